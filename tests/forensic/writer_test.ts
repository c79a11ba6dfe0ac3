import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { KvhError } from "../../lib/errors.ts";
import { sealV1Record } from "../../lib/forensic/format_v1.ts";
import { verifyLog } from "../../lib/forensic/verify.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { listChainFiles } from "../../lib/forensic/chain_files.ts";

const CHILD = join(import.meta.dirname!, "_writer_child.ts");

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function fixedClock(start = Date.UTC(2026, 0, 1)): () => Date {
  let ms = start;
  return () => new Date(ms += 250);
}

const lines = async (path: string) =>
  (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");

Deno.test("openForensicLog() creates the directory 0700 and the log 0600", async () => {
  await withDir(async (root) => {
    const dir = join(root, "forensics", "nested");
    const log = await openForensicLog({ dir });
    await log.append("allocate", { tenant_id: "t1" });
    await log.close();
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(join(dir, "kv_cache.log"))).mode! & 0o777, 0o600);
    assert.equal(log.path, join(dir, "kv_cache.log"));
  });
});

Deno.test("openForensicLog() tightens an existing log file to 0600", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "kv_cache.log"), "", { mode: 0o644 });
    await Deno.chmod(join(dir, "kv_cache.log"), 0o644);
    const log = await openForensicLog({ dir });
    await log.close();
    assert.equal((await Deno.stat(join(dir, "kv_cache.log"))).mode! & 0o777, 0o600);
  });
});

Deno.test("openForensicLog() refuses a second writer in the same process with log_locked", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    try {
      await assert.rejects(
        openForensicLog({ dir }),
        (e) => e instanceof KvhError && e.code === "log_locked" && e.exitCode === 1,
      );
    } finally {
      await log.close();
    }
    const again = await openForensicLog({ dir });
    await again.close();
  });
});

Deno.test("openForensicLog() refuses a second writer in another process with log_locked", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CHILD, "lock", dir],
      }).output();
      assert.equal(new TextDecoder().decode(out.stdout).trim(), "log_locked");
    } finally {
      await log.close();
    }
  });
});

Deno.test("openForensicLog() refuses a symlinked log file", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "real.log"), "");
    await Deno.symlink(join(dir, "real.log"), join(dir, "kv_cache.log"));
    await assert.rejects(
      openForensicLog({ dir }),
      (e) => e instanceof KvhError && e.code === "log_symlink",
    );
  });
});

Deno.test("openForensicLog() rejects invalid options with TypeError or RangeError", async () => {
  await assert.rejects(openForensicLog({ dir: "" }), TypeError);
  await assert.rejects(openForensicLog({ dir: "/tmp", file: "a/b.log" }), TypeError);
  await assert.rejects(openForensicLog({ dir: "/tmp", maxBytes: 0 }), RangeError);
});

Deno.test("openForensicLog() refuses to append to a format-v1 log", async () => {
  await withDir(async (dir) => {
    const line = sealV1Record({ event_type: "x", ts: 1, trace_id: "t" }, "GENESIS").line;
    await Deno.writeTextFile(join(dir, "kv_cache.log"), line + "\n");
    await assert.rejects(
      openForensicLog({ dir }),
      (e) => e instanceof KvhError && e.code === "log_format",
    );
  });
});

Deno.test("openForensicLog() refuses to continue a log whose last record fails verification", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    await log.append("allocate", { tenant_id: "t1" });
    await log.close();
    const text = await Deno.readTextFile(join(dir, "kv_cache.log"));
    await Deno.writeTextFile(join(dir, "kv_cache.log"), text.replace("t1", "t2"));
    await assert.rejects(
      openForensicLog({ dir }),
      (e) => e instanceof KvhError && e.code === "log_corrupt" && e.exitCode === 2,
    );
  });
});

Deno.test("ForensicLog.append() continues the chain across reopen", async () => {
  await withDir(async (dir) => {
    for (let round = 0; round < 3; round++) {
      const log = await openForensicLog({ dir });
      const record = await log.append("allocate", { round });
      assert.equal(record.seq, round);
      await log.close();
    }
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.deepEqual([report.ok, report.records, report.head?.seq], [true, 3, 2]);
  });
});

Deno.test("ForensicLog.append() fsyncs a critical event before it resolves", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir, commitDelayMs: 60_000 });
    await log.append("allocate", { i: 0 });
    assert.equal((await lines(log.path)).length, 0);
    // The log knows nothing of the tracer's events: the caller says what is critical.
    await log.append("quarantine", {});
    assert.equal((await lines(log.path)).length, 0);
    await log.append("custom", {}, { critical: true });
    assert.equal((await lines(log.path)).length, 3);
    assert.equal(JSON.parse((await lines(log.path)).at(-1)!).event, "custom");
    await log.close();
  });
});

Deno.test("ForensicLog.append() group-commits: a full group is written before the append resolves", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({
      dir,
      commitDelayMs: 60_000,
      commitRecords: 10,
    });
    for (let i = 0; i < 9; i++) await log.append("allocate", { i });
    assert.equal((await lines(log.path)).length, 0);
    await log.append("allocate", { i: 9 });
    assert.equal((await lines(log.path)).length, 10);
    await log.append("allocate", { i: 10 });
    await log.flush();
    assert.equal((await lines(log.path)).length, 11);
    await log.close();
  });
});

Deno.test("ForensicLog groups reuse a written group's buffer: long then short groups write only their own records", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir, commitDelayMs: 60_000, commitRecords: 3 });
    // A group of long records, then groups of short ones written into the same buffer: no byte
    // of an earlier group may reach the file again.
    const sizes = [2000, 2000, 2000, 1, 1, 1, 500, 1, 1, 1, 1, 1];
    for (const [i, size] of sizes.entries()) {
      await log.append("allocate", { i, pad: "x".repeat(size) });
    }
    await log.flush();
    const written = (await lines(log.path)).map((line) => JSON.parse(line));
    assert.deepEqual(written.map((r) => [r.i, r.pad.length]), [...sizes.entries()]);
    assert.equal((await verifyLog(log.path)).ok, true);
    await log.close();
  });
});

Deno.test("ForensicLog.append() writes a group after commitDelayMs", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir, commitDelayMs: 1 });
    await log.append("allocate", {});
    const deadline = Date.now() + 5000;
    while ((await lines(log.path)).length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal((await lines(log.path)).length, 1);
    await log.close();
  });
});

Deno.test("ForensicLog.append() rotates by size into §4 names and keeps one chain", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({
      dir,
      maxBytes: 1500,
      now: fixedClock(),
    });
    for (let i = 0; i < 40; i++) await log.append("allocate", { i, tenant_id: "tenant-ü" });
    await log.close();
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n.startsWith("kv_cache-")
    );
    assert.ok(names.length >= 3);
    for (const name of names) {
      assert.match(name, /^kv_cache-2026010\dT\d{6}Z-\d+\.log$/);
      assert.ok((await Deno.stat(join(dir, name))).size <= 1500);
    }
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.equal(report.ok, true);
    assert.equal(report.files, names.length + 1);
    const rotates = report.records - 40;
    assert.equal(rotates, names.length);
  });
});

Deno.test("ForensicLog.append() writes MACs with a key", async () => {
  await withDir(async (dir) => {
    const key = new TextEncoder().encode("secret");
    const log = await openForensicLog({ dir, hmacKey: key });
    const record = await log.append("allocate", {});
    assert.match(record.mac ?? "", /^[0-9a-f]{64}$/);
    await log.close();
    assert.equal((await verifyLog(log.path, { hmacKey: key })).ok, true);
  });
});

Deno.test("openForensicLog() moves a torn tail aside and records it in a recovery record", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    await log.append("allocate", { i: 0 });
    await log.close();
    const torn = '{"v":2,"seq":1,"event":"allo';
    await Deno.writeTextFile(log.path, torn, { append: true });
    assert.equal((await verifyLog(log.path)).failure?.reason, "torn_tail");
    const reopened = await openForensicLog({ dir });
    await reopened.close();
    // The writer says so: the CLI prints its notices on stderr.
    assert.equal(reopened.notices.length, 1);
    assert.match(reopened.notices[0]!, new RegExp(`torn tail of ${torn.length} bytes`));
    const recovery = JSON.parse((await lines(log.path)).at(-1)!);
    assert.equal(recovery.event, "recovery");
    assert.equal(recovery.torn_bytes, torn.length);
    assert.equal(recovery.torn_sha256, createHash("sha256").update(torn).digest("hex"));
    assert.equal(await Deno.readTextFile(join(dir, recovery.moved_to)), torn);
    const report = await verifyLog(log.path);
    assert.equal(report.ok, true);
    assert.deepEqual(report.recoveries.map((r) => r.reason), ["torn_tail"]);
  });
});

Deno.test("openForensicLog() records a recovery, not a silent relink, when the active file is missing", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir, maxBytes: 600, now: fixedClock() });
    for (let i = 0; i < 10; i++) await log.append("allocate", { i });
    await log.close();
    const rotatedHead = (await verifyLog(log.path)).chain.at(-2)!;
    await Deno.remove(log.path);
    // Missing while rotated files exist: an integrity failure, not an unreadable log.
    const before = await verifyLog(log.path);
    assert.deepEqual([before.ok, before.failure?.reason], [false, "truncated"]);
    assert.match(before.failure!.detail, /missing/);
    const reopened = await openForensicLog({ dir, now: fixedClock() });
    assert.equal(reopened.notices.length, 1);
    assert.match(reopened.notices[0]!, /was missing/);
    await reopened.append("free", {});
    await reopened.close();
    const first = JSON.parse((await lines(log.path))[0]!);
    assert.deepEqual(
      [first.event, first.reason, first.prev_file, first.prev_file_last_hash, first.last_seq],
      ["recovery", "active_missing", rotatedHead.file, rotatedHead.last_hash, rotatedHead.last_seq],
    );
    const after = await verifyLog(log.path);
    assert.equal(after.ok, true, after.failure?.detail);
    assert.deepEqual(after.recoveries.map((r) => [r.reason, r.seq]), [[
      "active_missing",
      rotatedHead.last_seq! + 1,
    ]]);
    assert.equal(after.warnings.length, 1);
  });
});

Deno.test("openForensicLog() finishes a rotation a crash interrupted: the old file under both names", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    await log.append("allocate", { i: 0 });
    await log.close();
    // A crash after the rotated name was linked and before the next file took the active name.
    await Deno.link(log.path, join(dir, "kv_cache-20260101T000000Z-0.log"));
    await Deno.writeTextFile(`${log.path}.next`, "");
    const mid = await verifyLog(log.path);
    assert.deepEqual([mid.ok, mid.records], [true, 1], mid.failure?.detail);
    const reopened = await openForensicLog({ dir });
    await reopened.append("free", {});
    await reopened.close();
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["kv_cache.log", "kv_cache.log.lock"]);
    assert.deepEqual((await verifyLog(log.path)).records, 2);
  });
});

Deno.test("ForensicLog.append() rejects and counts when the log cannot be written", async () => {
  await withDir(async (dir) => {
    const now = () => new Date(Date.UTC(2026, 0, 1));
    const log = await openForensicLog({ dir, maxBytes: 400, now });
    await log.append("allocate", { i: 0 });
    // Occupy the name the rotation will use, so the rotation fails.
    await Deno.mkdir(join(dir, "kv_cache-20260101T000000Z-0.log"));
    let failed = 0;
    for (let i = 1; i < 10; i++) {
      try {
        await log.append("allocate", { i });
      } catch (error) {
        assert.ok(error instanceof KvhError && error.code === "audit_emit_failed", String(error));
        failed++;
      }
    }
    assert.ok(failed > 0);
    assert.ok(log.emitFailures >= failed);
    assert.ok(log.criticalEmitFailures >= 1);
    await assert.rejects(
      log.close(),
      (e) => e instanceof KvhError && e.code === "audit_emit_failed",
    );
  });
});

Deno.test("ForensicLog.append() rejects after close and counts it", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    await log.close();
    await log.close();
    await assert.rejects(
      log.append("quarantine", {}, { critical: true }),
      (e) => e instanceof KvhError && e.code === "audit_emit_failed",
    );
    assert.deepEqual([log.emitFailures, log.criticalEmitFailures], [1, 1]);
  });
});

Deno.test("ForensicLog.append() rejects fields it cannot write exactly and counts them", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    await assert.rejects(log.append("allocate", { seq: 5 }), TypeError);
    await assert.rejects(log.append("allocate", { n: 2 ** 60 }), TypeError);
    await assert.rejects(log.append("", {}), TypeError);
    assert.equal(log.emitFailures, 3);
    assert.equal(log.head === null, true);
    await log.append("allocate", {});
    assert.equal(log.head?.seq, 0);
    await log.close();
  });
});

Deno.test("openForensicLog() reports an unusable directory or log path as KvhError", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "file"), "");
    await assert.rejects(
      openForensicLog({ dir: join(dir, "file", "sub") }),
      (e) => e instanceof KvhError && e.code === "log_unwritable",
    );
    await Deno.mkdir(join(dir, "kv_cache.log"));
    await assert.rejects(
      openForensicLog({ dir }),
      (e) => e instanceof KvhError && e.code === "log_unwritable",
    );
  });
});

Deno.test("openForensicLog() refuses a torn tail or a last line over 16 MiB", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    await log.append("allocate", {});
    await log.close();
    const big = "x".repeat(17 * 1024 * 1024);
    await Deno.writeTextFile(log.path, big, { append: true });
    await assert.rejects(
      openForensicLog({ dir }),
      (e) => e instanceof KvhError && e.code === "log_corrupt" && /too long/.test(e.message),
    );
    await Deno.writeTextFile(log.path, "\n", { append: true });
    await assert.rejects(
      openForensicLog({ dir }),
      (e) => e instanceof KvhError && e.code === "log_corrupt" && /16 MiB/.test(e.message),
    );
  });
});

Deno.test("ForensicLog.flush() rejects once a write has failed", async () => {
  await withDir(async (dir) => {
    const now = () => new Date(Date.UTC(2026, 0, 1));
    const log = await openForensicLog({
      dir,
      maxBytes: 200,
      now,
      commitDelayMs: 1,
    });
    await log.append("allocate", { i: 0 });
    await Deno.mkdir(join(dir, "kv_cache-20260101T000000Z-0.log"));
    await log.append("allocate", { i: 1, pad: "x".repeat(200) }).catch(() => {});
    await assert.rejects(
      log.flush(),
      (e) => e instanceof KvhError && e.code === "audit_emit_failed",
    );
    await assert.rejects(log.append("allocate", {}), (e) => e instanceof KvhError);
    await log.close().catch(() => {});
  });
});

Deno.test("append() writes every byte of a group bigger than its first buffer, non-ASCII included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = await openForensicLog({ dir, commitRecords: 4096 });
    const note = "é€😀".repeat(300);
    const written = [];
    for (let i = 0; i < 200; i++) written.push(await log.append("allocate", { note, i }));
    await log.close();
    const text = await Deno.readTextFile(join(dir, "kv_cache.log"));
    const lines = text.trimEnd().split("\n");
    assert.equal(lines.length, 200);
    assert.deepEqual(lines.map((line) => JSON.parse(line).hash), written.map((r) => r.hash));
    assert.equal(
      new TextEncoder().encode(text).length,
      (await Deno.stat(join(dir, "kv_cache.log"))).size,
    );
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.equal(report.ok, true);
    assert.equal(report.records, 200);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openForensicLog() reopens a log whose first record is over 64 KiB", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    await log.append("allocate", { note: "é".repeat(80 * 1024) });
    await log.close();
    const again = await openForensicLog({ dir });
    await again.append("free", {});
    await again.close();
    const report = await verifyLog(join(dir, "kv_cache.log"));
    assert.deepEqual([report.ok, report.records], [true, 2]);
  });
});

Deno.test("openForensicLog() names the file and line when the first line is corrupt", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir });
    await log.append("allocate", { i: 0 });
    await log.append("allocate", { i: 1 });
    await log.close();
    const text = await Deno.readTextFile(log.path);
    await Deno.writeTextFile(log.path, "{oops" + text.slice(1));
    await assert.rejects(
      openForensicLog({ dir }),
      (e) =>
        e instanceof KvhError && e.code === "log_corrupt" && e.exitCode === 2 &&
        e.message.includes(log.path) && /line 1\b/.test(e.message) && !e.message.includes("\n"),
    );
  });
});

/** A write seam for a disk that fills up: once `full`, half of a write lands, then ENOSPC. */
function fillingDisk() {
  const disk = { full: false, writes: 0 };
  const writeSync = (file: Deno.FsFile, data: Uint8Array): number => {
    if (!disk.full) return file.writeSync(data);
    if (disk.writes++ % 2 === 0 && data.length > 1) return file.writeSync(data.subarray(0, 1));
    throw new Error("No space left on device (os error 28)");
  };
  return { disk, writeSync };
}

Deno.test("ForensicLog.append() cuts the file back to its last complete record on ENOSPC after a short write", async () => {
  await withDir(async (dir) => {
    const { disk, writeSync } = fillingDisk();
    const log = await openForensicLog({ dir, writeSync });
    for (let i = 0; i < 3; i++) await log.append("allocate", { i }, { critical: true });
    const before = (await Deno.stat(log.path)).size;
    disk.full = true;
    await assert.rejects(
      log.append("allocate", { i: 3, pad: "x".repeat(500) }, { critical: true }),
      (e) =>
        e instanceof KvhError && e.code === "audit_emit_failed" && e.exitCode === 1 &&
        e.message.includes(log.path) && /last complete record \(seq 2\)/.test(e.message),
    );
    assert.equal((await Deno.stat(log.path)).size, before);
    const report = await verifyLog(log.path);
    assert.deepEqual([report.ok, report.records, report.head?.seq], [true, 3, 2]);
    // Failed closed: nothing more is accepted.
    await assert.rejects(log.append("free", {}), KvhError);
    await assert.rejects(log.close(), KvhError);
  });
});

Deno.test("openForensicLog() on a still-full disk leaves no side files: a failed rotation is undone", async () => {
  await withDir(async (dir) => {
    const now = () => new Date(Date.UTC(2026, 0, 1));
    const first = await openForensicLog({ dir, maxBytes: 400, now });
    await first.append("allocate", { i: 0 });
    await first.append("allocate", { i: 1 });
    await first.close();
    const listing = () => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    const files = listing();
    const bytes = await Deno.readFile(first.path);
    const records = (await verifyLog(first.path)).records;
    for (let retry = 0; retry < 2; retry++) {
      const { disk, writeSync } = fillingDisk();
      disk.full = true;
      const log = await openForensicLog({ dir, maxBytes: 400, now, writeSync });
      await assert.rejects(
        log.append("allocate", { i: 2, pad: "x".repeat(300) }),
        (e) => e instanceof KvhError && /rotation was undone/.test(e.message),
      );
      await assert.rejects(log.close(), KvhError);
      assert.deepEqual(listing(), files);
      assert.deepEqual(await Deno.readFile(first.path), bytes);
      const report = await verifyLog(first.path);
      assert.deepEqual([report.ok, report.records], [true, records]);
    }
  });
});

Deno.test("openForensicLog() refuses a directory writable by group or others with the chmod that fixes it", async () => {
  await withDir(async (root) => {
    for (const mode of [0o770, 0o757, 0o1777]) {
      const dir = join(root, `shared ${mode.toString(8)}`);
      await Deno.mkdir(dir);
      await Deno.chmod(dir, mode);
      await assert.rejects(
        openForensicLog({ dir }),
        (e) =>
          e instanceof KvhError && e.code === "log_dir_insecure" && e.exitCode === 1 &&
          e.message.includes(`chmod go-w '${dir}'`),
      );
      assert.deepEqual([...Deno.readDirSync(dir)], []);
      await Deno.chmod(dir, 0o700);
      const log = await openForensicLog({ dir });
      await log.close();
    }
  });
});

Deno.test("openForensicLog() leaves a torn tail in place and fails clearly when it cannot move it aside", async () => {
  await withDir(async (dir) => {
    const now = () => new Date(Date.UTC(2026, 0, 1));
    const log = await openForensicLog({ dir, now });
    await log.append("allocate", { i: 0 });
    await log.close();
    const size = (await Deno.stat(log.path)).size;
    await Deno.writeTextFile(log.path, '{"v":2,', { append: true });
    // Something else already holds the side file's name: it is neither overwritten nor removed.
    const side = `${log.path}.torn-20260101T000000Z-${size}`;
    await Deno.writeTextFile(side, "not ours");
    await assert.rejects(
      openForensicLog({ dir, now }),
      (e) =>
        e instanceof KvhError && e.code === "log_unwritable" && e.message.includes(log.path) &&
        /torn tail/.test(e.message),
    );
    assert.equal(await Deno.readTextFile(side), "not ours");
    assert.equal((await Deno.stat(log.path)).size, size + 7);
    assert.equal((await verifyLog(log.path)).failure?.reason, "torn_tail");
  });
});

Deno.test("append() keeps the bytes of groups queued behind a write while new groups fill", async () => {
  await withDir(async (dir) => {
    const log = await openForensicLog({ dir, commitRecords: 2 });
    // Not awaited one by one: many small groups queue up behind the first write, each in its
    // own buffer until written, while their lines alternate long and short.
    const written = await Promise.all(
      Array.from(
        { length: 60 },
        (_, i) =>
          log.append("allocate", { i, note: i % 3 === 0 ? "x".repeat(2000) : "y" }, {
            critical: i % 17 === 0,
          }),
      ),
    );
    await log.close();
    const path = join(dir, "kv_cache.log");
    assert.deepEqual(
      (await lines(path)).map((line) => JSON.parse(line).hash),
      written.map((r) => r.hash),
    );
    assert.equal((await verifyLog(path)).ok, true);
  });
});

Deno.test("ForensicLog.append() rotates exactly when the next line would pass maxBytes, whatever its characters", async () => {
  await withDir(async (dir) => {
    const maxBytes = 3000;
    const log = await openForensicLog({ dir, maxBytes, now: fixedClock() });
    // Lines of one to four bytes a character, and of varied lengths, so a bound in UTF-16
    // units is sometimes far from the bytes.
    const notes = ["a", "é".repeat(40), "€".repeat(90), "😀".repeat(25), "b".repeat(400)];
    for (let i = 0; i < 120; i++) await log.append("allocate", { i, note: notes[i % 5] });
    await log.close();
    const files = (await listChainFiles(dir)).map((file) => Deno.readFileSync(file));
    assert.ok(files.length > 5, "the log rotated");
    const lineBytes = (file: Uint8Array, n: number) => {
      let start = 0;
      for (let k = 0; k < n; k++) start = file.indexOf(0x0a, start) + 1;
      return file.indexOf(0x0a, start) + 1 - start;
    };
    for (let i = 0; i + 1 < files.length; i++) {
      assert.ok(files[i]!.length <= maxBytes, `file ${i} is within maxBytes`);
      // The next file starts with its rotate record, then the line that did not fit.
      assert.ok(files[i]!.length + lineBytes(files[i + 1]!, 1) > maxBytes, `file ${i} was full`);
    }
    assert.equal((await verifyLog(join(dir, "kv_cache.log"))).ok, true);
  });
});
