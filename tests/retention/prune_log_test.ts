import assert from "node:assert/strict";
import { pruneLog } from "../../lib/retention/prune_log.ts";
import { verifyLog } from "../../lib/forensic/verify.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { KvhError } from "../../lib/errors.ts";
import { copyV1Fixture, EPOCH, listNames, snapshot, withTempDir, writeRotatedLog } from "./_log.ts";

const CHILD = new URL("./_prune_child.ts", import.meta.url).pathname;

/**
 * Why a partly finished prune must verify: the record names every file before any is removed, so
 * the first remaining file links to the last hash of ANY entry of that record, not only the last.
 */
const MID_PRUNE = "a history starting after any file a later prune record names must verify";

function rotatedNames(names: string[]): string[] {
  return names.filter((name) => name.startsWith("kv_cache-"));
}

async function lastRecord(path: string): Promise<Record<string, unknown>> {
  const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
  return JSON.parse(lines.at(-1)!);
}

Deno.test("pruneLog() deletes the oldest rotated files by count and the log still verifies", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const before = rotatedNames(await listNames(dir));
    assert.ok(before.length >= 4);
    const activeBefore = await Deno.readTextFile(`${dir}/kv_cache.log`);
    const report = await pruneLog({ dir, maxRotated: 2 });
    assert.equal(report.ok, true);
    assert.equal(report.action, "delete");
    assert.deepEqual(report.removed, before.slice(0, -2));
    assert.deepEqual(rotatedNames(await listNames(dir)), before.slice(-2));
    assert.equal(report.after?.ok, true);
    assert.ok(report.after!.records < report.before.records + 1);
    // The active file only grew: its old content is untouched.
    const activeAfter = await Deno.readTextFile(`${dir}/kv_cache.log`);
    assert.ok(activeAfter.startsWith(activeBefore));
    const record = await lastRecord(`${dir}/kv_cache.log`);
    assert.equal(record.event, "prune");
    assert.equal(record.seq, report.record?.seq);
    const removed = record.removed as {
      file: string;
      first_seq: number;
      last_seq: number;
      last_hash: string;
    }[];
    assert.deepEqual(removed.map((entry) => entry.file), report.removed);
    assert.deepEqual(Object.keys(removed[0]!).sort(), [
      "compact_range",
      "file",
      "first_seq",
      "last_hash",
      "last_seq",
    ]);
    assert.equal(removed[0]!.first_seq, 0);
    assert.match(String(record.reason), /keep the newest 2/);
    assert.equal((await verifyLog(`${dir}/kv_cache.log`)).ok, true);
  });
});

Deno.test("pruneLog() removes by age using the rotation time in the file name", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir, { stepMs: 86_400_000 });
    const now = new Date(EPOCH + 12.5 * 86_400_000);
    const report = await pruneLog({ dir, retentionDays: 5, now });
    assert.equal(report.ok, true);
    assert.ok(report.removed.length > 0);
    for (const candidate of report.plan) {
      assert.ok(Date.parse(candidate.rotated_at!) < now.getTime() - 5 * 86_400_000);
      assert.deepEqual(candidate.rules, ["age"]);
    }
    for (const name of report.kept) {
      const stamp = /-(\d{8}T\d{6}Z)-/.exec(name)![1]!;
      const at = Date.parse(
        stamp.replace(/(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/, "$1-$2-$3T$4:$5:$6Z"),
      );
      assert.ok(at >= now.getTime() - 5 * 86_400_000);
    }
  });
});

Deno.test("pruneLog() archives files 0600 under the same names", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const contents = await snapshot(dir);
    const archive = `${dir}/archive`;
    const report = await pruneLog({ dir, maxRotated: 1, archiveDir: archive });
    assert.equal(report.ok, true);
    assert.equal(report.action, "archive");
    assert.deepEqual(await listNames(archive), report.removed);
    for (const name of report.removed) {
      assert.equal(await Deno.readTextFile(`${archive}/${name}`), contents.get(name));
      assert.equal((await Deno.stat(`${archive}/${name}`)).mode! & 0o777, 0o600);
    }
    assert.equal((await Deno.stat(archive)).mode! & 0o777, 0o700);
  });
});

Deno.test("pruneLog() archives into a different file (device + inode) than the source", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const oldest = rotatedNames(await listNames(dir))[0]!;
    const source = await Deno.stat(`${dir}/${oldest}`);
    const report = await pruneLog({ dir, maxRotated: 1, archiveDir: `${dir}/archive` });
    assert.equal(report.removed[0], oldest);
    const copy = await Deno.stat(`${dir}/archive/${oldest}`);
    assert.equal(copy.nlink, 1);
    assert.notEqual(`${copy.dev}:${copy.ino}`, `${source.dev}:${source.ino}`);
  });
});

async function assertRefusesArchive(
  dir: string,
  archiveDir: string,
  code: string,
): Promise<void> {
  const contents = await snapshot(dir);
  await assert.rejects(pruneLog({ dir, maxRotated: 0, archiveDir }), (error: unknown) => {
    assert.ok(error instanceof KvhError);
    assert.equal(error.code, code);
    assert.equal(error.exitCode, 1);
    return true;
  });
  assert.deepEqual(await snapshot(dir), contents);
}

Deno.test("pruneLog() refuses an archive directory that is the log directory, changing nothing", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(`${dir}/log`);
    await assertRefusesArchive(`${dir}/log`, `${dir}/log/`, "archive_is_log_dir");
    await assertRefusesArchive(`${dir}/log`, `${dir}/log/new/..`, "archive_is_log_dir");
    await Deno.symlink(`${dir}/log`, `${dir}/alias`);
    await assertRefusesArchive(`${dir}/log`, `${dir}/alias`, "archive_is_log_dir");
  });
});

Deno.test("pruneLog() refuses an archive name that is a hard link to its source", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const oldest = rotatedNames(await listNames(dir))[0]!;
    await Deno.mkdir(`${dir}/archive`);
    await Deno.link(`${dir}/${oldest}`, `${dir}/archive/${oldest}`);
    await assertRefusesArchive(dir, `${dir}/archive`, "archive_same_file");
  });
});

Deno.test("pruneLog() refuses to overwrite an archived file with other content", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const archive = `${dir}/archive`;
    await Deno.mkdir(archive);
    const oldest = rotatedNames(await listNames(dir))[0]!;
    await Deno.writeTextFile(`${archive}/${oldest}`, "someone else's file\n");
    const contents = await snapshot(dir);
    await assert.rejects(
      pruneLog({ dir, maxRotated: 0, archiveDir: archive }),
      (error: unknown) => {
        assert.ok(error instanceof KvhError);
        assert.equal(error.code, "archive_exists");
        assert.equal(error.exitCode, 1);
        return true;
      },
    );
    assert.deepEqual(await snapshot(dir), contents);
    assert.equal(await Deno.readTextFile(`${archive}/${oldest}`), "someone else's file\n");
  });
});

Deno.test("pruneLog() in a dry run plans and changes nothing", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const contents = await snapshot(dir);
    const report = await pruneLog({
      dir,
      maxRotated: 0,
      archiveDir: `${dir}/archive`,
      dryRun: true,
    });
    assert.equal(report.ok, true);
    assert.equal(report.dry_run, true);
    assert.equal(report.plan.length, rotatedNames([...contents.keys()]).length);
    assert.deepEqual(report.removed, []);
    assert.equal(report.record, null);
    assert.equal(report.after, null);
    assert.deepEqual(await snapshot(dir), contents);
  });
});

Deno.test("pruneLog() prunes nothing when a rotated file is tampered with", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const second = rotatedNames(await listNames(dir))[1]!;
    const text = await Deno.readTextFile(`${dir}/${second}`);
    await Deno.writeTextFile(`${dir}/${second}`, text.replace('"h', '"X'));
    const contents = await snapshot(dir);
    const report = await pruneLog({ dir, maxRotated: 0 });
    assert.equal(report.ok, false);
    assert.equal(report.before.ok, false);
    assert.equal(report.before.failure?.file, second);
    assert.deepEqual(report.plan, []);
    assert.equal(report.record, null);
    assert.deepEqual(await snapshot(dir), contents);
  });
});

Deno.test("pruneLog() with nothing to remove writes no record", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const contents = await snapshot(dir);
    const report = await pruneLog({ dir, maxRotated: 100, retentionDays: 3650 });
    assert.equal(report.ok, true);
    assert.deepEqual(report.plan, []);
    assert.equal(report.record, null);
    assert.deepEqual(await snapshot(dir), contents);
  });
});

Deno.test("verifyLog() detects a rotated file deleted by hand without a prune record", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const oldest = rotatedNames(await listNames(dir))[0]!;
    await Deno.remove(`${dir}/${oldest}`);
    const report = await verifyLog(`${dir}/kv_cache.log`);
    assert.equal(report.ok, false);
    assert.ok(["linkage_mismatch", "seq_gap"].includes(report.failure!.reason));
    const pruned = await pruneLog({ dir, maxRotated: 0 });
    assert.equal(pruned.ok, false);
    assert.deepEqual(pruned.removed, []);
  });
});

Deno.test("pruneLog() prunes again after an earlier prune and the history still verifies", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    assert.equal((await pruneLog({ dir, maxRotated: 3 })).ok, true);
    await writeRotatedLog(dir, { records: 6, start: EPOCH + 100 * 3_600_000 });
    const second = await pruneLog({ dir, maxRotated: 1 });
    assert.equal(second.ok, true, JSON.stringify(second.after?.failure));
    assert.ok(second.removed.length > 0);
    assert.equal(rotatedNames(await listNames(dir)).length, 1);
  });
});

Deno.test("pruneLog() needs the key of a log with MACs and appends a MAC'd record", async () => {
  await withTempDir(async (dir) => {
    const hmacKey = new TextEncoder().encode("k".repeat(32));
    await writeRotatedLog(dir, { hmacKey });
    await assert.rejects(pruneLog({ dir, maxRotated: 1 }), (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "log_key_missing");
      return true;
    });
    const report = await pruneLog({ dir, maxRotated: 1, hmacKey });
    assert.equal(report.ok, true);
    assert.equal(report.after?.mac_checked, true);
    assert.equal(typeof (await lastRecord(`${dir}/kv_cache.log`)).mac, "string");
  });
});

Deno.test("pruneLog() fails clearly while another writer holds the log", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const writer = await openForensicLog({ dir });
    try {
      await assert.rejects(pruneLog({ dir, maxRotated: 0 }), (error: unknown) => {
        assert.ok(error instanceof KvhError);
        assert.equal(error.code, "log_locked");
        return true;
      });
    } finally {
      await writer.close();
    }
    assert.equal((await verifyLog(`${dir}/kv_cache.log`)).ok, true);
  });
});

Deno.test("pruneLog() prunes the Python tool's v1 log and appends a v1 prune record", async () => {
  await withTempDir(async (dir) => {
    await copyV1Fixture(dir);
    const activeBefore = await Deno.readTextFile(`${dir}/kv_cache.log`);
    const report = await pruneLog({ dir, maxRotated: 2, archiveDir: `${dir}/archive` });
    assert.equal(report.ok, true, JSON.stringify(report.after?.failure));
    assert.deepEqual(report.removed, [
      "kv_cache-1767225609.log",
      "kv_cache-1767225618.log",
      "kv_cache-1767225629.log",
      "kv_cache-1767225638.log",
    ]);
    assert.equal(report.record?.seq, null);
    const activeAfter = await Deno.readTextFile(`${dir}/kv_cache.log`);
    assert.ok(activeAfter.startsWith(activeBefore));
    const record = await lastRecord(`${dir}/kv_cache.log`);
    assert.equal(record.event_type, "prune");
    assert.deepEqual(Object.keys(record).slice(0, 3), ["event_type", "removed", "reason"]);
    assert.deepEqual(
      record.removed,
      report.plan.map((c) => ({ file: c.file, last_hash: c.last_hash, lines: 9 })),
    );
    assert.equal(record.curr_hash, report.record?.hash);
    assert.equal((await verifyLog(`${dir}/kv_cache.log`)).ok, true);
  });
});

Deno.test("pruneLog() with max rotated 0 removes every rotated file of a v1 log", async () => {
  await withTempDir(async (dir) => {
    await copyV1Fixture(dir);
    const report = await pruneLog({ dir, maxRotated: 0 });
    assert.equal(report.ok, true);
    assert.equal(report.removed.length, 6);
    assert.deepEqual(await listNames(dir), ["kv_cache.log"]);
  });
});

Deno.test("verifyLog() detects a v1 rotated file deleted by hand", async () => {
  await withTempDir(async (dir) => {
    await copyV1Fixture(dir);
    await Deno.remove(`${dir}/kv_cache-1767225609.log`);
    const report = await verifyLog(`${dir}/kv_cache.log`);
    assert.equal(report.ok, false);
    assert.equal(report.failure?.reason, "linkage_mismatch");
  });
});

async function killedAt(
  dir: string,
  step: string,
  maxRotated: number,
  archive?: string,
): Promise<void> {
  const args = ["run", "-A", CHILD, dir, step, String(maxRotated), ...(archive ? [archive] : [])];
  const child = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(child.signal, "SIGKILL", new TextDecoder().decode(child.stderr));
}

for (const step of ["verified", "recorded", "removed:1", "removed:2"]) {
  Deno.test(`pruneLog() killed after ${step} leaves a log that verifies and a rerun completes`, async () => {
    await withTempDir(async (dir) => {
      await writeRotatedLog(dir);
      const rotated = rotatedNames(await listNames(dir));
      await killedAt(dir, step, 1, `${dir}/archive`);
      const interrupted = await verifyLog(`${dir}/kv_cache.log`);
      assert.equal(interrupted.ok, true, `${MID_PRUNE}: ${JSON.stringify(interrupted.failure)}`);
      const rerun = await pruneLog({ dir, maxRotated: 1, archiveDir: `${dir}/archive` });
      assert.equal(rerun.ok, true, JSON.stringify(rerun.after?.failure));
      assert.deepEqual(rotatedNames(await listNames(dir)), rotated.slice(-1));
      assert.deepEqual(await listNames(`${dir}/archive`), rotated.slice(0, -1));
    });
  });
}

Deno.test("pruneLog() killed after recording on a v1 log leaves a log that verifies", async () => {
  await withTempDir(async (dir) => {
    await copyV1Fixture(dir);
    await killedAt(dir, "recorded", 3);
    assert.equal((await verifyLog(`${dir}/kv_cache.log`)).ok, true);
    assert.equal((await pruneLog({ dir, maxRotated: 3 })).ok, true);
    assert.equal(rotatedNames(await listNames(dir)).length, 3);
  });
});

Deno.test("pruneLog() finishes a move that an interrupted archive left half done", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const archive = `${dir}/archive`;
    await Deno.mkdir(archive);
    const oldest = rotatedNames(await listNames(dir))[0]!;
    await Deno.copyFile(`${dir}/${oldest}`, `${archive}/${oldest}`);
    const report = await pruneLog({ dir, maxRotated: 1, archiveDir: archive });
    assert.equal(report.ok, true);
    assert.equal(report.removed[0], oldest);
    assert.ok(!(await listNames(dir)).includes(oldest));
  });
});

async function otherFileSystem(): Promise<string | undefined> {
  try {
    const [shm, tmp] = await Promise.all([
      Deno.stat("/dev/shm"),
      Deno.stat(Deno.env.get("TMPDIR") ?? "/tmp"),
    ]);
    return shm.isDirectory && shm.dev !== tmp.dev
      ? await Deno.makeTempDir({ dir: "/dev/shm" })
      : undefined;
  } catch {
    return undefined;
  }
}

Deno.test("pruneLog() copies into an archive on another file system", async () => {
  const archive = await otherFileSystem();
  if (archive === undefined) return;
  try {
    await withTempDir(async (dir) => {
      await writeRotatedLog(dir);
      const contents = await snapshot(dir);
      const report = await pruneLog({ dir, maxRotated: 2, archiveDir: archive });
      assert.equal(report.ok, true);
      for (const name of report.removed) {
        assert.equal(await Deno.readTextFile(`${archive}/${name}`), contents.get(name));
        assert.equal((await Deno.stat(`${archive}/${name}`)).mode! & 0o777, 0o600);
      }
    });
  } finally {
    await Deno.remove(archive, { recursive: true });
  }
});

Deno.test("pruneLog() reports a file that vanished mid-prune as exit 1 and the log still verifies", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const oldest = rotatedNames(await listNames(dir))[0]!;
    const run = pruneLog({
      dir,
      maxRotated: 3,
      onStep: async (step) => {
        if (step.step === "recorded") await Deno.remove(`${dir}/${oldest}`);
      },
    });
    await assert.rejects(run, (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "prune_move_failed");
      assert.match(error.message, /not found/);
      return true;
    });
    const after = await verifyLog(`${dir}/kv_cache.log`);
    assert.equal(after.ok, true, `${MID_PRUNE}: ${JSON.stringify(after.failure)}`);
  });
});

Deno.test("pruneLog() refuses a v1 log whose writer appended after verification", async () => {
  await withTempDir(async (dir) => {
    await copyV1Fixture(dir);
    const rotatedBefore = rotatedNames(await listNames(dir));
    const run = pruneLog({
      dir,
      maxRotated: 0,
      onStep: async (step) => {
        if (step.step !== "verified") return;
        const file = await Deno.open(`${dir}/kv_cache.log`, { append: true });
        await file.write(new TextEncoder().encode('{"curr_hash": "x"}\n'));
        file.close();
      },
    });
    await assert.rejects(
      run,
      (error: unknown) => error instanceof KvhError && error.code === "log_changed",
    );
    assert.deepEqual(rotatedNames(await listNames(dir)), rotatedBefore);
  });
});

Deno.test("pruneLog() refuses a v1 log while another process holds the writer lock", async () => {
  await withTempDir(async (dir) => {
    await copyV1Fixture(dir);
    const lock = await Deno.open(`${dir}/kv_cache.log.lock`, {
      read: true,
      write: true,
      create: true,
    });
    try {
      await lock.lock(true);
      await assert.rejects(
        pruneLog({ dir, maxRotated: 0 }),
        (error: unknown) => error instanceof KvhError && error.code === "log_locked",
      );
    } finally {
      lock.close();
    }
    assert.equal(rotatedNames(await listNames(dir)).length, 6);
  });
});

Deno.test("pruneLog() refuses a v1 log whose active file has no record to chain to", async () => {
  await withTempDir(async (dir) => {
    await copyV1Fixture(dir);
    await Deno.writeTextFile(`${dir}/kv_cache.log`, "");
    const before = await verifyLog(`${dir}/kv_cache.log`);
    if (!before.ok) return; // an empty active file may itself be a verification failure
    await assert.rejects(
      pruneLog({ dir, maxRotated: 0 }),
      (error: unknown) => error instanceof KvhError && error.code === "prune_no_active",
    );
  });
});
