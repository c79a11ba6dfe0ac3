/// <reference lib="deno.worker" />
// A Worker with its own tracer and its own forensic log: runs seeded interleavings and posts
// back the number of violations and whether its log verifies.
import fc from "fast-check";
import { openForensicLog, verifyLog } from "../../lib/forensic/mod.ts";
import { runInterleaving, stepsArbitrary } from "./_interleavings.ts";

self.onmessage = async (event: MessageEvent<{ dir: string; seed: number }>) => {
  const { dir, seed } = event.data;
  const log = await openForensicLog({ dir, commitDelayMs: 1 });
  let violations = 0;
  try {
    await fc.assert(
      fc.asyncProperty(stepsArbitrary(4), async (steps) => {
        violations += await runInterleaving(steps, log);
      }),
      { seed, numRuns: 15 },
    );
  } finally {
    await log.close();
  }
  const report = await verifyLog(`${dir}/kv_cache.log`);
  self.postMessage({ violations, ok: report.ok, records: report.records });
};
