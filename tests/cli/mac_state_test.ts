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

Deno.test("kvh trace keeps a forward-secure log that kvh verify checks with the initial key", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/mac.key`, KEY, { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/new.key`, KEY2, { mode: 0o600 });
    const state = ["--mac-state-file", `${dir}/mac.state`];
    const key = ["--hmac-key-file", `${dir}/mac.key`];
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
    const gate = await runKvh([
      "gate",
      `${dir}/c.json`,
      "--json",
      "--require-verified",
      `${dir}/log/kv_cache.log`,
      ...key,
    ]);
    const verdict = JSON.parse(gate.stdout);
    assert.equal(verdict.verification.ok, true, gate.stdout);
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
