/**
 * Child process for the writer's cross-process tests: `deno run -A _writer_child.ts MODE DIR`.
 * - `critical`: appends critical events forever, printing each seq once its append resolved.
 * - `lock`: tries to open the log and prints the error code (or "opened").
 * - `rotating`: appends forever to a log that rotates every few records, printing "ready" after
 *   the first rotation.
 */
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { KvhError } from "../../lib/errors.ts";

const [mode, dir] = Deno.args;
if (mode === "lock") {
  try {
    const log = await openForensicLog({ dir: dir! });
    console.log("opened");
    await log.close();
  } catch (error) {
    console.log(error instanceof KvhError ? error.code : String(error));
  }
} else if (mode === "critical") {
  const log = await openForensicLog({ dir: dir! });
  for (let i = 0;; i++) {
    const record = await log.append("quarantine", { handle: `h${i}`, reason: "crash-test" }, {
      critical: true,
    });
    console.log(record.seq);
  }
} else if (mode === "rotating") {
  const log = await openForensicLog({
    dir: dir!,
    maxBytes: 1500,
    commitDelayMs: 1,
    commitRecords: 4,
  });
  for (let i = 0;; i++) {
    await log.append("allocate", { i, tenant_id: "tenant-live", pad: "x".repeat(100) });
    if (i === 20) console.log("ready");
    // Yield so the parent's verifications interleave with appends, groups and rotations.
    if (i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
