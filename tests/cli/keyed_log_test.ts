/** A keyed log stays keyed (issue 9.4): trace and prune never append to it without its key. */
import assert from "node:assert/strict";
import { runKvh } from "./_kvh.ts";
import { snapshot, withTempDir, writeRotatedLog } from "../retention/_log.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { KvhError } from "../../lib/errors.ts";

const KEY = "k".repeat(32);
const KEY_MISSING =
  /^kvh: Cannot append to \S+kv_cache\.log: its records carry MACs; give its key \(--hmac-key-file or FORENSIC_HMAC_SECRET\)$/m;

async function keyedLog(dir: string): Promise<void> {
  await writeRotatedLog(`${dir}/log`, { hmacKey: new TextEncoder().encode(KEY) });
  await Deno.writeTextFile(`${dir}/wrong.key`, "w".repeat(32), { mode: 0o600 });
}

function trace(dir: string, extra: string[] = [], env: Record<string, string> = {}) {
  // Metrics (written also by a failed run) go beside the log directory, which must not change.
  const metrics = ["--metrics-json", `${dir}/coverage.json`, "--metrics-prom", `${dir}/m.prom`];
  return runKvh(["trace", "--requests", "1", "--log-dir", `${dir}/log`, ...metrics, ...extra], {
    env,
  });
}

function prune(dir: string, extra: string[] = []) {
  return runKvh(["prune", "--log-dir", `${dir}/log`, "--max-rotated", "1", ...extra]);
}

Deno.test("openForensicLog() refuses a log with MACs without the key", async () => {
  await withTempDir(async (dir) => {
    await keyedLog(dir);
    const before = await snapshot(`${dir}/log`);
    await assert.rejects(openForensicLog({ dir: `${dir}/log` }), (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "log_key_missing");
      assert.equal(error.exitCode, 1);
      return true;
    });
    assert.deepEqual(await snapshot(`${dir}/log`), before);
  });
});

Deno.test("kvh trace and kvh prune refuse to append to a keyed log without the key (exit 1)", async () => {
  await withTempDir(async (dir) => {
    await keyedLog(dir);
    const before = await snapshot(`${dir}/log`);
    for (const run of [await trace(dir), await prune(dir)]) {
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, KEY_MISSING);
    }
    assert.deepEqual(await snapshot(`${dir}/log`), before);
    const withKey = await trace(dir, [], { FORENSIC_HMAC_SECRET: KEY });
    assert.equal(withKey.code, 0, withKey.stderr);
  });
});

Deno.test("kvh trace and kvh prune refuse a wrong key alike (exit 2)", async () => {
  await withTempDir(async (dir) => {
    await keyedLog(dir);
    const before = await snapshot(`${dir}/log`);
    const key = ["--hmac-key-file", `${dir}/wrong.key`];
    const traced = await trace(dir, key);
    assert.equal(traced.code, 2, traced.stderr);
    assert.match(traced.stderr, /mac_mismatch/);
    const pruned = await prune(dir, key);
    assert.equal(pruned.code, 2, pruned.stderr);
    assert.match(pruned.stdout, /FAILED mac_mismatch/);
    assert.deepEqual(await snapshot(`${dir}/log`), before);
  });
});
