/**
 * Output flags of every subcommand: one helper, one message, one exit code (issue 10.1), and
 * none of them can write over the forensic log (issue 9.2).
 */
import assert from "node:assert/strict";
import { runKvh } from "./_kvh.ts";
import { listNames, snapshot, withTempDir, writeRotatedLog } from "../retention/_log.ts";

const GOOD_METRICS = JSON.stringify({
  min_coverage_pct: 100,
  unsanitized_regions_count: 0,
  quarantine_count: 0,
});

/** A path under a regular file: no output can be written there. */
async function blockedPath(dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/file`, "");
  return `${dir}/file/out.json`;
}

function assertUnwritable(run: { code: number; stderr: string }, flag: string, path: string) {
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, new RegExp(`^kvh: Cannot write ${flag} ${path}: `, "m"));
}

Deno.test("kvh prune --out that cannot be written is exit 1 naming the flag and path", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(`${dir}/log`, { records: 3 });
    const out = await blockedPath(dir);
    const run = await runKvh(["prune", "--log-dir", `${dir}/log`, "--dry-run", "--out", out]);
    assertUnwritable(run, "--out", out);
  });
});

Deno.test("kvh gate --out that cannot be written is exit 1 naming the flag and path", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/coverage.json`, GOOD_METRICS);
    const out = await blockedPath(dir);
    const run = await runKvh(["gate", `${dir}/coverage.json`, "--out", out]);
    assertUnwritable(run, "--out", out);
  });
});

Deno.test("kvh trace --metrics-json that cannot be written is exit 1 naming the flag and path", async () => {
  await withTempDir(async (dir) => {
    const out = await blockedPath(dir);
    const run = await runKvh([
      "trace",
      "--requests",
      "2",
      "--log-dir",
      `${dir}/log`,
      "--metrics-json",
      out,
      "--metrics-prom",
      `${dir}/metrics.prom`,
    ]);
    assertUnwritable(run, "--metrics-json", out);
  });
});

/** Runs `fn` with a rotated log in `<dir>/log` and asserts that no byte of it changed. */
async function withLog(fn: (dir: string, log: string) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    await writeRotatedLog(`${dir}/log`, { records: 6 });
    const before = await snapshot(`${dir}/log`);
    await fn(dir, `${dir}/log/kv_cache.log`);
    assert.deepEqual(await snapshot(`${dir}/log`), before);
  });
}

function assertRefused(
  run: { code: number; stderr: string },
  flag: string,
  path: string,
  why = ".*/log/kv_cache\\.log",
) {
  assert.equal(run.code, 1, run.stderr);
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0]!, new RegExp(`^kvh: Refusing ${flag} ${path}: ${why}`));
}

Deno.test("kvh verify --out refuses the log itself, a symlink and a hard link to it", async () => {
  await withLog(async (dir, log) => {
    assertRefused(await runKvh(["verify", log, "--json", "--out", log]), "--out", log);
    await Deno.symlink(log, `${dir}/symlink.json`);
    const viaSymlink = await runKvh(["verify", log, "--out", `${dir}/symlink.json`]);
    assertRefused(viaSymlink, "--out", `${dir}/symlink.json`);
    await Deno.link(log, `${dir}/hardlink.json`);
    const viaEnv = await runKvh(["verify", log], { env: { VERDICT_OUT: `${dir}/hardlink.json` } });
    assertRefused(viaEnv, "--out", `${dir}/hardlink.json`);
  });
});

Deno.test("kvh prune --out refuses a rotated file of the log and its lock, pruning nothing", async () => {
  await withLog(async (dir, log) => {
    const rotated = (await listNames(`${dir}/log`)).find((name) => name !== "kv_cache.log")!;
    const target = `${dir}/log/${rotated}`;
    const run = await runKvh([
      "prune",
      "--log-dir",
      `${dir}/log`,
      "--max-rotated",
      "0",
      "--out",
      target,
    ]);
    assertRefused(run, "--out", target);
    const lock = await runKvh(["prune", "--log-dir", `${dir}/log`, "--out", `${log}.lock`]);
    assertRefused(lock, "--out", `${log}.lock`);
  });
});

Deno.test("kvh gate --out and --evidence refuse the log they verify and any other forensic log", async () => {
  await withLog(async (dir, log) => {
    await Deno.writeTextFile(`${dir}/coverage.json`, GOOD_METRICS);
    const metrics = `${dir}/coverage.json`;
    await Deno.link(log, `${dir}/verdict.json`);
    const out = await runKvh(["gate", metrics, "--out", `${dir}/verdict.json`]);
    assertRefused(out, "--out", `${dir}/verdict.json`, ".* is a forensic log \\(its first line");
    const required = await runKvh(["gate", metrics, "--require-verified", log, "--out", log]);
    assertRefused(required, "--out", log);
    await Deno.symlink(log, `${dir}/bundle`);
    const evidence = await runKvh([
      "gate",
      metrics,
      "--require-verified",
      log,
      "--evidence",
      `${dir}/bundle`,
    ]);
    assertRefused(evidence, "--evidence", `${dir}/bundle`);
  });
});

Deno.test("kvh trace --metrics-json/--metrics-prom refuse the log it writes, before opening it", async () => {
  await withLog(async (dir, log) => {
    await Deno.remove(`${log}.lock`).catch(() => {});
    const trace = (extra: string[]) =>
      runKvh(["trace", "--requests", "1", "--log-dir", `${dir}/log`, ...extra]);
    assertRefused(await trace(["--metrics-json", log]), "--metrics-json", log);
    await Deno.link(log, `${dir}/metrics.prom`);
    const hard = await trace(["--metrics-prom", `${dir}/metrics.prom`]);
    assertRefused(hard, "--metrics-prom", `${dir}/metrics.prom`);
    await Deno.symlink(log, `${dir}/coverage.json`);
    const soft = await trace(["--metrics-json", `${dir}/coverage.json`]);
    assertRefused(soft, "--metrics-json", `${dir}/coverage.json`);
    // The writer was never opened: it would have created the lock file.
    assert.equal((await listNames(`${dir}/log`)).length, (await snapshot(`${dir}/log`)).size);
    await assert.rejects(Deno.lstat(`${log}.lock`), Deno.errors.NotFound);
  });
});
