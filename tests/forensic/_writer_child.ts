/**
 * Child process for the writer's cross-process tests: `deno run -A _writer_child.ts MODE DIR`.
 * - `critical`: appends critical events forever, printing each seq once its append resolved.
 * - `lock`: tries to open the log and prints the error code (or "opened").
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
}
