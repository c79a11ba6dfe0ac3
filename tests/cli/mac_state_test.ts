/** kvh trace/verify/prune with forward-secure MACs (issue 12.4), as a CronJob runs them. */
import assert from "node:assert/strict";
import { runKvh } from "./_kvh.ts";
import { withTempDir } from "../_temp_dir.ts";
import { macKeyId } from "../../lib/forensic/epoch_key.ts";

const KEY = "k".repeat(32);
const KEY2 = "n".repeat(32);

function trace(dir: string, extra: string[], env: Record<string, string> = {}) {
  const outputs = ["--metrics-json", `${dir}/c.json`, "--metrics-prom", `${dir}/m.prom`];
  return runKvh([
    "trace",
    "--requests",
    "6",
    "--log-dir",
    `${dir}/log`,
    "--max-log-bytes",
    "4096",
    "--mac-epoch-records",
    "4",
    ...outputs,
    ...extra,
  ], { env });
}

function verify(dir: string, extra: string[]) {
  return runKvh(["verify", `${dir}/log/kv_cache.log`, "--json", ...extra]);
}

/** `kvh gate --json` on the run's metrics, requiring the log to verify. */
function gate(dir: string, extra: string[], env: Record<string, string> = {}) {
  const log = ["--require-verified", `${dir}/log/kv_cache.log`];
  return runKvh(["gate", `${dir}/c.json`, "--json", ...log, ...extra], { env });
}

/** Writes the initial key and a second one to rekey to; returns the writer's flags. */
async function writeKeys(dir: string) {
  await Deno.writeTextFile(`${dir}/mac.key`, KEY, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/new.key`, KEY2, { mode: 0o600 });
  return {
    state: ["--mac-state-file", `${dir}/mac.state`],
    key: ["--hmac-key-file", `${dir}/mac.key`],
  };
}

Deno.test("kvh trace keeps a forward-secure log that kvh verify checks with the initial key", async () => {
  await withTempDir(async (dir) => {
    const { state, key } = await writeKeys(dir);
    const start = await trace(dir, [...key, ...state]);
    assert.equal(start.code, 0, start.stderr);
    // Continued from the state file alone.
    const next = await trace(dir, [], { KV_MAC_STATE_FILE: `${dir}/mac.state` });
    assert.equal(next.code, 0, next.stderr);
    const ok = await verify(dir, key);
    assert.equal(ok.code, 0, ok.stdout);
    const report = JSON.parse(ok.stdout);
    assert.equal(report.mac_checked, true);
    assert.ok(report.files > 1, "the log rotated");
    // The gate's --require-verified derives the epoch keys the same way.
    const gated = await gate(dir, key);
    const verdict = JSON.parse(gated.stdout);
    assert.equal(verdict.verification.ok, true, gated.stdout);
    // Neither the key nor the state file: refused, the log unchanged.
    const bare = await trace(dir, []);
    assert.equal(bare.code, 1, bare.stderr);
    assert.match(bare.stderr, /--mac-state-file/);
    // The key without the state file: refused too.
    const keyOnly = await trace(dir, key);
    assert.equal(keyOnly.code, 1, keyOnly.stderr);
    // A prune MACs its record with the current epoch key.
    const prune = await runKvh([
      "prune",
      "--log-dir",
      `${dir}/log`,
      "--max-rotated",
      "1",
      ...key,
      ...state,
    ]);
    assert.equal(prune.code, 0, prune.stderr + prune.stdout);
    // Rekey: the new key's id in a keyring.
    const rekey = await trace(dir, ["--hmac-key-file", `${dir}/new.key`, ...state]);
    assert.equal(rekey.code, 0, rekey.stderr);
    const without = await verify(dir, key);
    assert.equal(without.code, 2, without.stdout);
    assert.equal(JSON.parse(without.stdout).failure.reason, "unknown_key");
    await Deno.writeTextFile(
      `${dir}/keyring`,
      `# rotated keys\n${macKeyId(new TextEncoder().encode(KEY2))} new.key\n`,
      { mode: 0o600 },
    );
    const withRing = await verify(dir, [...key, "--keyring", `${dir}/keyring`]);
    assert.equal(withRing.code, 0, withRing.stdout);
    const ringOnly = await verify(dir, ["--keyring", `${dir}/keyring`]);
    assert.equal(ringOnly.code, 1, ringOnly.stderr);
    await Deno.writeTextFile(
      `${dir}/keyring`,
      `${macKeyId(new TextEncoder().encode(KEY))} new.key\n`,
      { mode: 0o600 },
    );
    const wrongRing = await verify(dir, [...key, "--keyring", `${dir}/keyring`]);
    assert.equal(wrongRing.code, 1, wrongRing.stderr);
    assert.match(wrongRing.stderr, /keyring/);
  });
});

Deno.test("kvh gate --require-verified takes --keyring for a rekeyed log, as kvh verify does", async () => {
  await withTempDir(async (dir) => {
    const { state, key } = await writeKeys(dir);
    assert.equal((await trace(dir, [...key, ...state])).code, 0);
    const rekey = await trace(dir, ["--hmac-key-file", `${dir}/new.key`, ...state]);
    assert.equal(rekey.code, 0, rekey.stderr);
    await Deno.writeTextFile(
      `${dir}/keyring`,
      `${macKeyId(new TextEncoder().encode(KEY2))} new.key\n`,
      { mode: 0o600 },
    );
    const without = await gate(dir, key);
    assert.equal(without.code, 2, without.stderr);
    assert.equal(JSON.parse(without.stdout).verification.failure.reason, "unknown_key");
    const withRing = await gate(dir, [...key, "--keyring", `${dir}/keyring`]);
    assert.equal(withRing.code, 0, withRing.stdout + withRing.stderr);
    assert.equal(JSON.parse(withRing.stdout).verification.mac_checked, true);
    const fromEnv = await gate(dir, key, { KV_MAC_KEYRING: `${dir}/keyring` });
    assert.equal(fromEnv.code, 0, fromEnv.stdout + fromEnv.stderr);
    // Without a log to verify the keyring has no use: a usage error, not a silent pass.
    const noLog = await runKvh(["gate", `${dir}/c.json`, "--keyring", `${dir}/keyring`]);
    assert.equal(noLog.code, 1, noLog.stderr);
    assert.match(noLog.stderr, /--keyring: it needs --require-verified/);
  });
});
