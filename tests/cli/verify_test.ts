import assert from "node:assert/strict";
import { join } from "node:path";
import { kvhRunArgs } from "./_kvh.ts";

const ROOT = join(import.meta.dirname!, "..", "..");
const PEER = join(ROOT, "tests", "fixtures", "python-tool");
const VECTORS = join(ROOT, "tests", "vectors", "forensic");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function denoEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => k.startsWith("DENO_")),
  );
}

async function kvh(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...kvhRunArgs(), "verify", ...args],
    // A clean environment keeps the caller's FORENSIC_HMAC_SECRET/LOG_DIR out; DENO_* variables
    // pass through so coverage of the child is collected.
    env: { ...denoEnv(), NO_COLOR: "1", ...env },
    clearEnv: true,
    cwd: ROOT,
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function keyFile(dir: string, source: string): Promise<string> {
  const path = join(dir, "key");
  await Deno.writeFile(path, await Deno.readFile(source), { mode: 0o600 });
  await Deno.chmod(path, 0o600);
  return path;
}

Deno.test("kvh verify exits 0 with a one-line summary for the peer's rotated history", async () => {
  const run = await kvh([join(PEER, "rotated", "kv_cache.log")]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stdout,
    /^OK .*: 7 files, 56 records, head seq 55 hash [0-9a-f]{64}, MACs not checked\n$/,
  );
});

Deno.test("kvh verify --json prints exactly the documented keys and exits 2 on tampering", async () => {
  const run = await kvh(["--json", join(PEER, "tampered-edit", "kv_cache.log")]);
  assert.equal(run.code, 2);
  const report = JSON.parse(run.stdout);
  for (const key of ["ok", "files", "records", "head", "mac_checked", "failure"]) {
    assert.ok(key in report, key);
  }
  assert.equal(report.ok, false);
  assert.deepEqual(Object.keys(report.failure).sort(), ["detail", "file", "line", "reason"]);
  assert.deepEqual([report.failure.file, report.failure.line, report.failure.reason], [
    "kv_cache.log",
    13,
    "hash_mismatch",
  ]);
});

Deno.test("kvh verify prints a human-readable failure naming the file, line and reason", async () => {
  const run = await kvh([join(PEER, "tampered-delete", "kv_cache.log")]);
  assert.equal(run.code, 2);
  assert.match(run.stdout, /^FAILED .*: chain_break in kv_cache\.log line 26: /);
  assert.ok(!run.stdout.includes("\x1b["), "no colour when NO_COLOR is set");
});

Deno.test("kvh verify --hmac-key-file checks MACs; a wrong key fails at line 1", async () => {
  await withDir(async (dir) => {
    const good = await kvh([
      "--json",
      "--hmac-key-file",
      await keyFile(dir, join(PEER, "hmac", "secret.txt")),
      join(PEER, "hmac", "kv_cache.log"),
    ]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(JSON.parse(good.stdout).mac_checked, true);
    const wrongKey = await keyFile(dir, join(PEER, "hmac-wrong-key", "wrong-secret.txt"));
    const bad = await kvh([
      "--json",
      "--hmac-key-file",
      wrongKey,
      join(PEER, "hmac-wrong-key", "kv_cache.log"),
    ]);
    assert.equal(bad.code, 2);
    assert.deepEqual([JSON.parse(bad.stdout).failure.line, JSON.parse(bad.stdout).failure.reason], [
      1,
      "mac_mismatch",
    ]);
  });
});

Deno.test("kvh verify takes the key from FORENSIC_HMAC_SECRET and warns when MACs go unchecked", async () => {
  const secret = await Deno.readTextFile(join(PEER, "hmac", "secret.txt"));
  const keyed = await kvh(["--json", join(PEER, "hmac", "kv_cache.log")], {
    FORENSIC_HMAC_SECRET: secret,
  });
  assert.equal(keyed.code, 0);
  assert.equal(JSON.parse(keyed.stdout).mac_checked, true);
  const unkeyed = await kvh([join(PEER, "hmac", "kv_cache.log")]);
  assert.equal(unkeyed.code, 0);
  assert.match(unkeyed.stderr, /warning: Records carry MACs but no key was given/);
  const stripped = await kvh([join(PEER, "plain", "kv_cache.log")], {
    FORENSIC_HMAC_SECRET: secret,
  });
  assert.equal(stripped.code, 2);
  assert.match(stripped.stdout, /mac_missing/);
});

Deno.test("kvh verify --out writes the JSON report atomically with mode 0600", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "verification.json");
    const run = await kvh(["--out", out, join(PEER, "plain", "kv_cache.log")]);
    assert.equal(run.code, 0);
    const report = JSON.parse(await Deno.readTextFile(out));
    assert.deepEqual([report.ok, report.records], [true, 50]);
    assert.equal((await Deno.stat(out)).mode! & 0o777, 0o600);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["verification.json"]);
    const viaEnv = await kvh([join(PEER, "tampered-edit", "kv_cache.log")], { VERDICT_OUT: out });
    assert.equal(viaEnv.code, 2);
    assert.equal(JSON.parse(await Deno.readTextFile(out)).failure.line, 13);
  });
});

Deno.test("kvh verify --out creates missing parent directories, as prune and gate --out do", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "reports", "today", "v.json");
    const run = await kvh(["--out", out, join(PEER, "plain", "kv_cache.log")]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(await Deno.readTextFile(out)).ok, true);
  });
});

Deno.test("kvh verify --out that cannot be written is exit 1 naming the flag and path", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "file"), "");
    const out = join(dir, "file", "v.json");
    const run = await kvh(["--out", out, join(PEER, "plain", "kv_cache.log")]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`^kvh: Cannot write --out ${out}: `));
  });
});

Deno.test("kvh verify finds the log from LOG_DIR/LOG_FILE or --log-dir/--log-file, as verify_logs did", async () => {
  const env = await kvh([], { LOG_DIR: join(PEER, "rotated") });
  assert.equal(env.code, 0, env.stderr);
  assert.match(env.stdout, /7 files/);
  const flags = await kvh(["--log-dir", join(PEER, "plain"), "--log-file", "kv_cache.log"]);
  assert.equal(flags.code, 0, flags.stderr);
  const missing = await kvh([]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Missing LOG/);
  const both = await kvh(["--log-dir", PEER, join(PEER, "plain", "kv_cache.log")]);
  assert.equal(both.code, 1);
});

Deno.test("kvh verify --active-only and --allow-nonfinite", async () => {
  const parallel = await kvh(["--json", "--workers", "2", join(PEER, "rotated", "kv_cache.log")]);
  assert.equal(parallel.code, 0, parallel.stderr);
  assert.equal(JSON.parse(parallel.stdout).records, 56);
  const badWorkers = await kvh(["--workers", "-1", join(PEER, "rotated", "kv_cache.log")]);
  assert.equal(badWorkers.code, 1);
  const active = await kvh(["--json", "--active-only", join(PEER, "rotated", "kv_cache.log")]);
  assert.equal(active.code, 0);
  assert.equal(JSON.parse(active.stdout).files, 1);
  const strict = await kvh([join(PEER, "floats", "nonfinite.log")]);
  assert.equal(strict.code, 2);
  const lenient = await kvh(["--allow-nonfinite", join(PEER, "floats", "nonfinite.log")]);
  assert.equal(lenient.code, 0);
});

Deno.test("kvh verify answers a tamper vector: a missing middle rotated file", async () => {
  const run = await kvh(["--json", join(VECTORS, "missing-middle-rotated", "kv_cache.log")]);
  assert.equal(run.code, 2);
  assert.equal(JSON.parse(run.stdout).failure.reason, "linkage_mismatch");
});

Deno.test("kvh verify bad input: missing path, directory, symlink exit 1 with a one-line error", async () => {
  await withDir(async (dir) => {
    const missing = await kvh([join(dir, "none.log")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^kvh: Cannot verify .*none\.log: not found\n$/);
    const directory = await kvh([dir]);
    assert.equal(directory.code, 1);
    assert.match(directory.stderr, /not a regular file/);
    await Deno.symlink(join(PEER, "plain", "kv_cache.log"), join(dir, "link.log"));
    const link = await kvh([join(dir, "link.log")]);
    assert.equal(link.code, 1);
    assert.match(link.stderr, /symlink/);
  });
});

Deno.test("kvh verify bad input: empty file passes, garbage and a 100 MB line fail with 2, log untouched", async () => {
  await withDir(async (dir) => {
    const empty = join(dir, "empty.log");
    await Deno.writeFile(empty, new Uint8Array());
    const emptyRun = await kvh(["--json", empty]);
    assert.equal(emptyRun.code, 0);
    assert.deepEqual([JSON.parse(emptyRun.stdout).records, JSON.parse(emptyRun.stdout).head], [
      0,
      null,
    ]);

    const garbage = join(dir, "garbage.log");
    const bytes = crypto.getRandomValues(new Uint8Array(65536));
    await Deno.writeFile(garbage, bytes);
    const garbageRun = await kvh(["--json", garbage]);
    assert.equal(garbageRun.code, 2);
    assert.equal(JSON.parse(garbageRun.stdout).failure.reason, "malformed_json");
    assert.deepEqual(await Deno.readFile(garbage), bytes);

    const long = join(dir, "long.log");
    using file = await Deno.open(long, { write: true, create: true });
    const block = new TextEncoder().encode("a".repeat(1024 * 1024));
    for (let i = 0; i < 100; i++) await file.write(block);
    await file.write(new TextEncoder().encode("\n"));
    const before = await Deno.stat(long);
    const longRun = await kvh(["--json", long]);
    assert.equal(longRun.code, 2);
    const failure = JSON.parse(longRun.stdout).failure;
    assert.deepEqual([failure.line, failure.reason], [1, "malformed_json"]);
    assert.match(failure.detail, /longer than/);
    assert.equal((await Deno.stat(long)).mtime?.getTime(), before.mtime?.getTime());
  });
});

Deno.test({
  name: "kvh verify bad input: an unreadable log exits 1",
  ignore: Deno.uid() === 0,
  fn: async () => {
    await withDir(async (dir) => {
      const path = join(dir, "kv_cache.log");
      await Deno.writeTextFile(path, "");
      await Deno.chmod(path, 0o000);
      const run = await kvh([path]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /permission denied/);
    });
  },
});

Deno.test("kvh verify exits 2 when the active file is missing beside rotated files, 1 when nothing is there", async () => {
  await withDir(async (dir) => {
    const rotated = await Deno.readDir(join(PEER, "rotated"));
    for await (const entry of rotated) {
      if (/^kv_cache-\d+\.log$/.test(entry.name)) {
        await Deno.copyFile(join(PEER, "rotated", entry.name), join(dir, entry.name));
      }
    }
    const missing = await kvh([join(dir, "kv_cache.log")]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stdout, /^FAILED .*: truncated in kv_cache\.log line 0: Active file/);
    const empty = await kvh([join(dir, "other.log")]);
    assert.equal(empty.code, 1, empty.stdout);
  });
});

Deno.test("kvh verify LOG [--json] (run without commander) prints what the full parser's run prints", async () => {
  // `--log-dir DIR --log-file NAME` names the same path through commander.
  for (
    const [folder, env] of [
      ["ok-plain", {}],
      ["edit-field", {}],
      ["ok-hmac", { FORENSIC_HMAC_SECRET: join(VECTORS, "wrong-key", "kv_cache.log") }],
    ] as const
  ) {
    const dir = join(VECTORS, folder);
    for (const json of [[], ["--json"]]) {
      const fast = await kvh([join(dir, "kv_cache.log"), ...json], env);
      const full = await kvh(["--log-dir", dir, "--log-file", "kv_cache.log", ...json], env);
      assert.deepEqual(fast, full, `${folder} ${json}`);
    }
  }
  const fastMissing = await kvh([join(VECTORS, "absent.log")]);
  assert.equal(fastMissing.code, 1);
  assert.deepEqual(fastMissing, await kvh(["--log-dir", VECTORS, "--log-file", "absent.log"]));
});
