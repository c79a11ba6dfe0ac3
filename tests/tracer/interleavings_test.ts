import assert from "node:assert/strict";
import fc from "fast-check";
import { NULL_SINK, runInterleaving, stepsArbitrary, totals } from "./_interleavings.ts";

const SEED = 20261123;

Deno.test("CacheTracer never hands a buffer to a tenant with a non-zero byte (random interleavings)", async () => {
  let violations = 0;
  await fc.assert(
    fc.asyncProperty(stepsArbitrary(6), async (steps) => {
      violations += await runInterleaving(steps, NULL_SINK);
    }),
    { seed: SEED, numRuns: 100 },
  );
  assert.equal(violations, 0, `seed ${SEED}`);
  // The harness must have made the tracer catch some stray writes, or it proved nothing.
  assert.ok(totals.strays > 0 && totals.leaks > 0 && totals.handOffs > 0, JSON.stringify(totals));
});

Deno.test("CacheTracer keeps tenants apart in Workers, each with its own tracer and log", async () => {
  const dirs = await Promise.all([0, 1].map(() => Deno.makeTempDir()));
  try {
    const results = await Promise.all(
      dirs.map((dir, i) =>
        new Promise<{ violations: number; ok: boolean; records: number }>((resolve, reject) => {
          const worker = new Worker(new URL("./_interleavings_worker.ts", import.meta.url), {
            type: "module",
          });
          worker.onmessage = (event) => {
            worker.terminate();
            resolve(event.data);
          };
          worker.onerror = (event) => {
            worker.terminate();
            event.preventDefault();
            reject(new Error(event.message));
          };
          worker.postMessage({ dir, seed: SEED + i });
        })
      ),
    );
    for (const result of results) {
      assert.equal(result.violations, 0);
      assert.equal(result.ok, true);
      assert.ok(result.records > 0);
    }
  } finally {
    await Promise.all(dirs.map((dir) => Deno.remove(dir, { recursive: true })));
  }
});
