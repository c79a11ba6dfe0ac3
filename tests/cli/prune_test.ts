import assert from "node:assert/strict";
import { type KvhRun, runKvh } from "./_kvh.ts";
import { verifyLog } from "../../lib/forensic/verify.ts";
import {
  copyV1Fixture,
  listNames,
  snapshot,
  withTempDir,
  writeRotatedLog,
} from "../retention/_log.ts";

function kvh(args: string[], env: Record<string, string> = {}): Promise<KvhRun> {
  return runKvh(["prune", ...args], { env });
}

function rotated(names: string[]): string[] {
  return names.filter((name) => name.startsWith("kv_cache-"));
}

Deno.test("kvh prune removes old rotated files, prints before/after and writes the report", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const before = rotated(await listNames(dir));
    const run = await kvh([
      "--log-dir",
      dir,
      "--max-rotated",
      "2",
      "--out",
      `${dir}/out/report.json`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^verified before: ok \(/);
    assert.match(run.stdout, /^delete: kv_cache-\S+ \(2 records, rotated \S+, rule count\)$/m);
    assert.match(run.stdout, /^prune record: seq \d+ [0-9a-f]{64}$/m);
    assert.match(run.stdout, /^verified after: ok \(/m);
    assert.deepEqual(rotated(await listNames(dir)), before.slice(-2));
    const path = `${dir}/out/report.json`;
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const report = JSON.parse(await Deno.readTextFile(path));
    assert.equal(report.ok, true);
    assert.deepEqual(report.removed, before.slice(0, -2));
    assert.equal(report.before.ok, true);
    assert.equal(report.after.ok, true);
  });
});

Deno.test("kvh prune --dry-run --json prints the plan and changes nothing", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const contents = await snapshot(dir);
    const run = await kvh(["--log-dir", dir, "--max-rotated", "0", "--dry-run", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.equal(report.dry_run, true);
    assert.equal(report.plan.length, rotated([...contents.keys()]).length);
    assert.deepEqual(await snapshot(dir), contents);
    const text = await kvh([
      "--log-dir",
      dir,
      "--max-rotated",
      "0",
      "--dry-run",
      "--archive-dir",
      `${dir}/a`,
    ]);
    assert.match(text.stdout, /^would archive to .*\/a: kv_cache-/m);
    assert.deepEqual(await snapshot(dir), contents);
  });
});

Deno.test("kvh prune reads LOG_DIR, LOG_FILE, MAX_ROTATED, ARCHIVE_DIR and VERDICT_OUT", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const run = await kvh([], {
      LOG_DIR: dir,
      LOG_FILE: "kv_cache.log",
      MAX_ROTATED: "1",
      ARCHIVE_DIR: `${dir}/archive`,
      VERDICT_OUT: `${dir}/verification.json`,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(rotated(await listNames(dir)).length, 1);
    assert.ok((await listNames(`${dir}/archive`)).length > 0);
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/verification.json`)).ok, true);
  });
});

Deno.test("kvh prune names a bad environment value or flag and exits 1", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const contents = await snapshot(dir);
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["--log-dir", dir], { MAX_ROTATED: "-1" }, /Invalid MAX_ROTATED/],
      [["--log-dir", dir], { MAX_ROTATED: "1.5" }, /Invalid MAX_ROTATED/],
      [["--log-dir", dir], { RETENTION_DAYS: "soon" }, /Invalid RETENTION_DAYS/],
      [["--log-dir", dir, "--max-rotated", "-2"], {}, /Invalid --max-rotated/],
      [["--log-dir", dir, "--retention-days", "x"], {}, /Invalid --retention-days/],
      [["--log-dir", dir, "--log-file", "../x.log"], {}, /Invalid --log-file/],
      [["--log-dir", `${dir}/absent`, "--max-rotated", "0"], {}, /absent/],
    ];
    for (const [args, env, pattern] of cases) {
      const run = await kvh(args, env);
      assert.equal(run.code, 1, `${args.join(" ")} ${JSON.stringify(env)}`);
      assert.match(run.stderr, pattern);
    }
    assert.deepEqual(await snapshot(dir), contents);
  });
});

Deno.test("kvh prune exits 2 and prunes nothing when the log does not verify", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const oldest = rotated(await listNames(dir))[0]!;
    const text = await Deno.readTextFile(`${dir}/${oldest}`);
    await Deno.writeTextFile(`${dir}/${oldest}`, text.replace('"h0"', '"hX"'));
    const contents = await snapshot(dir);
    const run = await kvh(["--log-dir", dir, "--max-rotated", "0", "--out", `${dir}/r.json`]);
    assert.equal(run.code, 2);
    assert.match(run.stdout, /^verified before: FAILED hash_mismatch at kv_cache-/);
    assert.deepEqual([...(await snapshot(dir)).keys()].filter((n) => n !== "r.json"), [
      ...contents.keys(),
    ]);
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/r.json`)).before.ok, false);
  });
});

Deno.test("kvh prune handles the Python tool's v1 log with an HMAC key file", async () => {
  await withTempDir(async (dir) => {
    await copyV1Fixture(dir);
    await Deno.writeTextFile(`${dir}/key`, "wrong-key", { mode: 0o600 });
    const wrong = await kvh([
      "--log-dir",
      dir,
      "--max-rotated",
      "0",
      "--hmac-key-file",
      `${dir}/key`,
    ]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stdout, /verified before: FAILED mac_missing/);
    const run = await kvh(["--log-dir", dir, "--retention-days", "0"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^prune record: [0-9a-f]{64}$/m);
    assert.deepEqual(rotated(await listNames(dir)), []);
    assert.equal((await verifyLog(`${dir}/kv_cache.log`)).ok, true);
  });
});

Deno.test("kvh prune --help names the Python command it replaces", async () => {
  const run = await kvh(["--help"]);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /python -m tools\.verify_logs/);
  for (
    const flag of ["--log-dir", "--retention-days", "--max-rotated", "--archive-dir", "--dry-run"]
  ) {
    assert.match(run.stdout, new RegExp(flag));
  }
});

Deno.test("kvh prune --archive-dir naming the log directory is exit 1 and loses nothing", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(dir);
    const before = await snapshot(dir);
    const run = await kvh(["--log-dir", dir, "--max-rotated", "2", "--archive-dir", `${dir}/`]);
    assert.equal(run.code, 1, run.stdout);
    assert.equal(
      run.stderr,
      `kvh: Refusing --archive-dir ${dir}/: it is the log directory ${dir} (archiving would delete the only copy)\n`,
    );
    assert.deepEqual(await snapshot(dir), before);
  });
});
