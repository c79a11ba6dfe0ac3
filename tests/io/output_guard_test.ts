import assert from "node:assert/strict";
import { refuseEvidenceOutputs } from "../../lib/io/mod.ts";
import { KvhError } from "../../lib/errors.ts";
import { withTempDir, writeRotatedLog } from "../retention/_log.ts";

const V1_LINE = '{"event_type": "free", "prev_hash": "GENESIS", "curr_hash": "ab"}\n';

async function refusal(log: string | undefined, path: string): Promise<KvhError> {
  const error = await refuseEvidenceOutputs(log, [{ flag: "--out", path }]).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(error instanceof KvhError, `expected a refusal of ${path}`);
  assert.equal(error.code, "output_is_evidence");
  assert.equal(error.exitCode, 1);
  return error;
}

async function rotatedNames(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir)))
    .map((entry) => entry.name)
    .filter((name) => name.startsWith("kv_cache-"));
}

Deno.test("refuseEvidenceOutputs() refuses the active log and names both paths", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir, { records: 1 });
    const log = `${dir}/kv_cache.log`;
    const error = await refusal(log, log);
    assert.equal(
      error.message,
      `Refusing --out ${log}: it is the active log ${log} (evidence is never overwritten)`,
    );
  });
});

Deno.test("refuseEvidenceOutputs() refuses the active log before it exists", async () => {
  await withTempDir(async (dir) => {
    await refusal(`${dir}/forensics/kv_cache.log`, `${dir}/forensics/./kv_cache.log`);
  });
});

Deno.test("refuseEvidenceOutputs() refuses a rotated file of the chain and the lock", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const log = `${dir}/kv_cache.log`;
    const [rotated] = await rotatedNames(dir);
    const error = await refusal(log, `${dir}/${rotated}`);
    assert.match(error.message, /a rotated file of the log/);
    assert.match((await refusal(log, `${log}.lock`)).message, /the lock of the log/);
  });
});

Deno.test("refuseEvidenceOutputs() follows symlinks, also dangling ones and symlinked directories", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/logs`);
    const log = `${dir}/logs/kv_cache.log`;
    await Deno.symlink("logs/kv_cache.log", `${dir}/dangling.json`);
    await refusal(log, `${dir}/dangling.json`);
    await writeRotatedLog(`${dir}/logs`, { records: 1 });
    await Deno.symlink(log, `${dir}/link.json`);
    await refusal(log, `${dir}/link.json`);
    await Deno.symlink(`${dir}/logs`, `${dir}/alias`);
    await refusal(log, `${dir}/alias/kv_cache.log`);
    await refusal(`${dir}/alias/kv_cache.log`, log);
  });
});

Deno.test("refuseEvidenceOutputs() refuses a hard link to the log by device and inode", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(`${dir}/logs`, { records: 1 });
    await Deno.link(`${dir}/logs/kv_cache.log`, `${dir}/report.json`);
    const error = await refusal(`${dir}/logs/kv_cache.log`, `${dir}/report.json`);
    assert.match(error.message, /it is the active log/);
  });
});

Deno.test("refuseEvidenceOutputs() refuses any existing forensic log, by name or first line", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(`${dir}/other`, { records: 1 });
    await Deno.copyFile(`${dir}/other/kv_cache.log`, `${dir}/v2.json`);
    assert.match((await refusal(undefined, `${dir}/v2.json`)).message, /format v2 record/);
    await Deno.writeTextFile(`${dir}/v1.json`, V1_LINE);
    assert.match((await refusal(undefined, `${dir}/v1.json`)).message, /format v1 record/);
    await Deno.writeTextFile(`${dir}/audit.log`, "");
    assert.match((await refusal(undefined, `${dir}/audit.log`)).message, /name audit\.log/);
    await Deno.writeTextFile(`${dir}/huge.json`, "{" + " ".repeat(1 << 20));
    assert.match((await refusal(undefined, `${dir}/huge.json`)).message, /over 1 MiB/);
  });
});

Deno.test("refuseEvidenceOutputs() allows new files and earlier reports", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const log = `${dir}/kv_cache.log`;
    await Deno.writeTextFile(`${dir}/verification.json`, '{\n  "ok": true\n}\n');
    await Deno.writeTextFile(`${dir}/metrics.prom`, "# HELP kvh_up\n");
    await refuseEvidenceOutputs(log, [
      { flag: "--out", path: `${dir}/verification.json` },
      { flag: "--metrics-prom", path: `${dir}/metrics.prom` },
      { flag: "--metrics-json", path: `${dir}/new/coverage.json` },
    ]);
    await refuseEvidenceOutputs(undefined, []);
  });
});
