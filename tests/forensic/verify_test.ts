import assert from "node:assert/strict";
import { join } from "node:path";
import { KvhError } from "../../lib/errors.ts";
import { sealV1Record } from "../../lib/forensic/format_v1.ts";
import { verifyLog } from "../../lib/forensic/verify.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";

const PEER = join(import.meta.dirname!, "..", "fixtures", "python-tool");
const peer = (folder: string, file = "kv_cache.log") => join(PEER, folder, file);
const key = (folder: string, file: string) => Deno.readFileSync(join(PEER, folder, file));

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeLog(
  dir: string,
  records: number,
  options: { maxBytes?: number } = {},
): Promise<void> {
  const log = await openForensicLog({ dir, ...options });
  for (let i = 0; i < records; i++) await log.append("allocate", { i, tenant_id: `t${i % 3}` });
  await log.close();
}

Deno.test("verifyLog() verifies the peer's plain log: ok, 50 records", async () => {
  const report = await verifyLog(peer("plain"));
  assert.equal(report.ok, true);
  assert.equal(report.records, 50);
  assert.equal(report.head?.seq, 49);
  assert.equal(report.chain[0]?.format, "v1");
});

Deno.test("verifyLog() checks the peer's HMAC log with its key", async () => {
  const report = await verifyLog(peer("hmac"), { hmacKey: key("hmac", "secret.txt") });
  assert.equal(report.ok, true);
  assert.equal(report.mac_checked, true);
  assert.deepEqual(report.warnings, []);
});

Deno.test("verifyLog() passes the peer's HMAC log without a key but says MACs were not checked", async () => {
  const report = await verifyLog(peer("hmac"));
  assert.equal(report.ok, true);
  assert.equal(report.mac_checked, false);
  assert.equal(report.mac_present, true);
  assert.equal(report.warnings.length, 1);
});

Deno.test("verifyLog() reports mac_present false for a log without MACs", async () => {
  const report = await verifyLog(peer("plain"));
  assert.deepEqual([report.ok, report.mac_present, report.mac_checked], [true, false, false]);
});

Deno.test("verifyLog() without a key fails a v2 MAC that is not 64 lowercase hex digits", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir, hmacKey: new TextEncoder().encode("k") });
    await log.append("allocate", { tenant_id: "t1" });
    await log.append("free", { tenant_id: "t1" });
    await log.close();
    const good = await verifyLog(log.path);
    assert.deepEqual([good.ok, good.mac_present, good.mac_checked], [true, true, false]);
    const text = await Deno.readTextFile(log.path);
    const lines = text.split("\n");
    for (const bad of ['"', "A", "g"]) {
      // The MAC's last digit sits just before the closing quote and brace.
      const second = lines[1]!;
      lines[1] = second.slice(0, -3) + bad + second.slice(-2);
      await Deno.writeTextFile(log.path, lines.join("\n"));
      const report = await verifyLog(log.path);
      assert.deepEqual([report.failure?.line, report.failure?.reason], [2, "mac_mismatch"], bad);
      lines[1] = second;
    }
  });
});

Deno.test("verifyLog() verifies the peer's rotated history over all 7 files", async () => {
  const report = await verifyLog(peer("rotated"));
  assert.equal(report.ok, true);
  assert.equal(report.files, 7);
  assert.equal(report.chain[0]?.file, "kv_cache-1767225609.log");
});

for (
  const [folder, line, reason] of [
    ["tampered-edit", 13, "hash_mismatch"],
    ["tampered-delete", 26, "chain_break"],
    ["tampered-reorder", 31, "chain_break"],
    // A v1 line cut in half is not JSON: it must not read as a v2 record after v1 records. The
    // cut line is index 10 from 0 (expected.json), physical line 11.
    ["tampered-malformed-line", 11, "malformed_json"],
  ] as const
) {
  Deno.test(`verifyLog() fails the peer's ${folder} log at line ${line}`, async () => {
    const report = await verifyLog(peer(folder));
    assert.equal(report.ok, false);
    assert.deepEqual([report.failure?.line, report.failure?.reason], [line, reason]);
  });
}

Deno.test("verifyLog() fails the peer's HMAC log with the wrong key at line 1 as mac_mismatch", async () => {
  const report = await verifyLog(peer("hmac-wrong-key"), {
    hmacKey: key("hmac-wrong-key", "wrong-secret.txt"),
  });
  assert.deepEqual([report.failure?.line, report.failure?.reason], [1, "mac_mismatch"]);
});

Deno.test("verifyLog() fails a v1 log without MACs as mac_missing when a key is given", async () => {
  const report = await verifyLog(peer("plain"), { hmacKey: new TextEncoder().encode("k") });
  assert.deepEqual([report.failure?.line, report.failure?.reason], [1, "mac_missing"]);
});

Deno.test("verifyLog() verifies the peer's unicode and float probes", async () => {
  assert.equal((await verifyLog(peer("unicode"))).ok, true);
  assert.equal((await verifyLog(peer("floats"), { activeOnly: true })).ok, true);
  assert.equal((await verifyLog(peer("floats", "respelled.log"), { activeOnly: true })).ok, true);
});

Deno.test("verifyLog() rejects NaN tokens unless allowNonFinite is set", async () => {
  const strict = await verifyLog(peer("floats", "nonfinite.log"), { activeOnly: true });
  assert.equal(strict.failure?.reason, "malformed_json");
  const lenient = await verifyLog(peer("floats", "nonfinite.log"), {
    activeOnly: true,
    allowNonFinite: true,
  });
  assert.equal(lenient.ok, true);
});

Deno.test("verifyLog() reports a v1 line with a duplicate key as malformed_json", async () => {
  await withDir(async (dir) => {
    const sealed = sealV1Record(
      { event_type: "x", tenant_id: "a", ts: 1, trace_id: "t" },
      "GENESIS",
    );
    await Deno.writeTextFile(
      join(dir, "kv_cache.log"),
      '{"tenant_id": "evil", ' + sealed.line.slice(1) + "\n",
    );
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.equal(report.failure?.reason, "malformed_json");
    assert.match(report.failure?.detail ?? "", /tenant_id/);
  });
});

Deno.test("verifyLog() reports a v2 record after v1 records as chain_break", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 1);
    const v2 = await Deno.readTextFile(join(dir, "kv_cache.log"));
    const v1 = sealV1Record({ event_type: "x", ts: 1, trace_id: "t" }, "GENESIS").line;
    await Deno.writeTextFile(join(dir, "kv_cache.log"), v1 + "\n" + v2);
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.deepEqual([report.failure?.line, report.failure?.reason], [2, "chain_break"]);
  });
});

Deno.test("verifyLog() skips blank lines in v1 logs, as the Python tool does", async () => {
  await withDir(async (dir) => {
    const first = sealV1Record({ event_type: "x", ts: 1, trace_id: "t" }, "GENESIS");
    const second = sealV1Record({ event_type: "y", ts: 2, trace_id: "u" }, first.currHash);
    await Deno.writeTextFile(join(dir, "kv_cache.log"), `${first.line}\n  \n${second.line}\n`);
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.equal(report.ok, true);
    assert.equal(report.records, 2);
  });
});

Deno.test("verifyLog() reports a v1 file that does not start at GENESIS as chain_break", async () => {
  await withDir(async (dir) => {
    const line = sealV1Record({ event_type: "x", ts: 1, trace_id: "t" }, "f".repeat(64)).line;
    await Deno.writeTextFile(join(dir, "kv_cache.log"), line + "\n");
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.deepEqual([report.failure?.line, report.failure?.reason], [1, "chain_break"]);
  });
});

Deno.test("verifyLog() with activeOnly accepts an active file that starts with a rotate record", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 30, { maxBytes: 1024 });
    const full = await verifyLog(join(dir, "kv_cache.log"));
    const active = await verifyLog(join(dir, "kv_cache.log"), { activeOnly: true });
    assert.equal(full.ok, true);
    assert.equal(active.ok, true);
    assert.equal(active.files, 1);
    assert.ok(full.files > 1);
    assert.deepEqual(active.head, full.head);
  });
});

Deno.test("verifyLog() reports a v2 history not starting at genesis as linkage_mismatch", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 5);
    const lines = (await Deno.readTextFile(join(dir, "kv_cache.log"))).split("\n");
    await Deno.writeTextFile(join(dir, "kv_cache.log"), lines.slice(2).join("\n"));
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.deepEqual([report.failure?.file, report.failure?.line, report.failure?.reason], [
      "kv_cache.log",
      1,
      "linkage_mismatch",
    ]);
  });
});

Deno.test("verifyLog() lists what it learned about each file of the chain", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 20, { maxBytes: 1024 });
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.equal(report.chain[0]?.first_seq, 0);
    for (let i = 1; i < report.chain.length; i++) {
      assert.equal(report.chain[i]?.first_seq, report.chain[i - 1]!.last_seq! + 1);
      assert.equal(report.chain[i]?.first_prev, report.chain[i - 1]?.last_hash);
    }
    assert.equal(report.chain.reduce((n, f) => n + f.records, 0), report.records);
  });
});

Deno.test("verifyLog() throws KvhError for a missing log, a directory and a symlink", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      verifyLog(join(dir, "none.log")),
      (e) => e instanceof KvhError && e.exitCode === 1,
    );
    await Deno.mkdir(join(dir, "sub.log"));
    await assert.rejects(
      verifyLog(join(dir, "sub.log")),
      (e) => e instanceof KvhError && e.code === "log_not_file",
    );
    await writeLog(dir, 1);
    await Deno.symlink(join(dir, "kv_cache.log"), join(dir, "link.log"));
    await assert.rejects(
      verifyLog(join(dir, "link.log")),
      (e) => e instanceof KvhError && e.code === "log_symlink",
    );
  });
});

Deno.test("verifyLog() refuses a rotated file that is a symlink", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 1);
    await Deno.symlink(join(dir, "kv_cache.log"), join(dir, "kv_cache-20260101T000000Z-0.log"));
    await assert.rejects(
      verifyLog(join(dir, "kv_cache.log")),
      (e) => e instanceof KvhError && e.code === "log_symlink",
    );
  });
});

Deno.test("verifyLog() passes an empty file with 0 records and a null head", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "kv_cache.log"), "");
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.deepEqual([report.ok, report.records, report.head], [true, 0, null]);
  });
});

Deno.test("verifyLog() reports binary garbage as malformed_json at line 1", async () => {
  await withDir(async (dir) => {
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) % 256;
    await Deno.writeFile(join(dir, "kv_cache.log"), bytes);
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.deepEqual([report.failure?.line, report.failure?.reason], [1, "malformed_json"]);
  });
});

Deno.test("verifyLog() reports a line over the cap as malformed_json without holding it", async () => {
  await withDir(async (dir) => {
    await writeLog(dir, 2);
    await Deno.writeTextFile(join(dir, "kv_cache.log"), "x".repeat(5000) + "\n", { append: true });
    const report = await verifyLog(join(dir, "kv_cache.log"), { maxLineBytes: 1024 });
    assert.deepEqual([report.failure?.line, report.failure?.reason], [3, "malformed_json"]);
    assert.match(report.failure?.detail ?? "", /longer than 1024/);
  });
});

Deno.test("verifyLog() gives the same answers on worker threads for v1 histories", async () => {
  for (const folder of ["rotated", "tampered-reorder", "hmac"]) {
    const hmacKey = folder === "hmac" ? key("hmac", "secret.txt") : undefined;
    const inline = await verifyLog(peer(folder), { hmacKey });
    const parallel = await verifyLog(peer(folder), { hmacKey, workers: 2 });
    assert.deepEqual(parallel, inline, folder);
  }
});

Deno.test("verifyLog() rejects a negative worker count with RangeError", async () => {
  await assert.rejects(verifyLog(peer("plain"), { workers: -1 }), RangeError);
});
