import assert from "node:assert/strict";
import { join } from "node:path";
import { KvhError } from "../../lib/errors.ts";
import { verifyLog } from "../../lib/forensic/verify.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { pruneLog } from "../../lib/retention/prune_log.ts";

const CHILD = join(import.meta.dirname!, "_writer_child.ts");
const VERIFY = new URL("../../lib/forensic/verify.ts", import.meta.url).href;

/** Runs `fn` while a child process appends to a log in `dir` that rotates every few records. */
async function withLiveWriter(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, "rotating", dir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let seen = "";
    while (!seen.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("The writer child exited before it was ready");
      seen += value;
    }
    await fn(dir);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("verifyLog() reports no false failure while a writer appends and rotates", async () => {
  await withLiveWriter(async (dir) => {
    const path = join(dir, "kv_cache.log");
    let rotatedSeen = 0;
    let lastHead = -1;
    for (let run = 0; run < 25; run++) {
      const report = await verifyLog(path);
      assert.equal(report.ok, true, `run ${run}: ${JSON.stringify(report.failure)}`);
      // What was committed when the run started: the head only moves forward.
      assert.ok(report.head!.seq >= lastHead, `run ${run}: head went back`);
      lastHead = report.head!.seq;
      rotatedSeen = Math.max(rotatedSeen, report.files - 1);
    }
    assert.ok(rotatedSeen > 0, "the writer never rotated during the test");
  });
});

Deno.test("pruneLog() during a live writer's work reports no content defect", async () => {
  await withLiveWriter(async (dir) => {
    for (let run = 0; run < 10; run++) {
      try {
        const report = await pruneLog({ dir, maxRotated: 1_000_000, dryRun: true });
        assert.equal(report.ok, true, `run ${run}: ${JSON.stringify(report.before.failure)}`);
      } catch (error) {
        // A second writer is refused; that is not a defect of the log.
        assert.ok(error instanceof KvhError && error.code === "log_locked", String(error));
      }
    }
  });
});

Deno.test("verifyLog() holds one rotated file open at a time: a long history verifies under a low descriptor limit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await openForensicLog({ dir, maxBytes: 300, commitDelayMs: 0 });
    for (let i = 0; i < 400; i++) await log.append("allocate", { i });
    await log.close();
    const code = `import { verifyLog } from ${JSON.stringify(VERIFY)};
const report = await verifyLog(${JSON.stringify(join(dir, "kv_cache.log"))});
console.log(JSON.stringify([report.ok, report.files]));`;
    const { success, stdout, stderr } = await new Deno.Command("sh", {
      args: ["-c", 'ulimit -n 128 && exec "$0" eval "$1"', Deno.execPath(), code],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(success, new TextDecoder().decode(stderr));
    const [ok, files] = JSON.parse(new TextDecoder().decode(stdout));
    assert.equal(ok, true);
    assert.ok(files > 200, `only ${files} files`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
