/**
 * Runs a prune and SIGKILLs itself right after a given step, to prove that every interrupted
 * state still verifies. Usage: _prune_child.ts DIR STEP MAX_ROTATED [ARCHIVE_DIR], where STEP is
 * `verified`, `recorded` or `removed:N` (after the N-th file).
 */
import { pruneLog } from "../../lib/retention/prune_log.ts";

const [dir, stop, maxRotated, archiveDir] = Deno.args;
let removed = 0;
await pruneLog({
  dir: dir!,
  maxRotated: Number(maxRotated),
  archiveDir,
  onStep: (step) => {
    if (step.step === "removed") removed++;
    const here = step.step === "removed" ? `removed:${removed}` : step.step;
    if (here === stop) Deno.kill(Deno.pid, "SIGKILL");
  },
});
console.log("finished without being killed");
