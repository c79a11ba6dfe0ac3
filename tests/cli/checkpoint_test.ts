/**
 * Signed checkpoints end to end through `kvh`: keygen, trace and prune signing as they write,
 * verify against one or two checkpoints, inclusion proofs, and the attacks each must catch with
 * its own reason.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runKvh } from "./_kvh.ts";
import { withTempDir } from "../_temp_dir.ts";

interface Setup {
  dir: string;
  logs: string;
  log: string;
  key: string;
  pub: string;
  checkpoint: string;
}

async function setUp(dir: string): Promise<Setup> {
  const keys = join(dir, "keys");
  assert.equal((await runKvh(["keygen", "node-1", "--out", keys])).code, 0);
  const logs = join(dir, "logs");
  return {
    dir,
    logs,
    log: join(logs, "kv_cache.log"),
    key: join(keys, "node-1.key"),
    pub: join(keys, "node-1.pub"),
    checkpoint: join(dir, "cp", "checkpoint.note"),
  };
}

async function trace(s: Setup, extra: string[] = [], signed = true): Promise<void> {
  const flags = signed ? ["--signing-key-file", s.key, "--checkpoint-file", s.checkpoint] : [];
  const run = await runKvh([
    "trace",
    "--log-dir",
    s.logs,
    "--requests",
    "12",
    "--tokens",
    "4",
    "--max-log-bytes",
    "4096",
    "--metrics-json",
    join(s.dir, "coverage.json"),
    "--metrics-prom",
    join(s.dir, "metrics.prom"),
    ...flags,
    ...extra,
  ]);
  assert.equal(run.code, 0, run.stderr);
}

async function verify(s: Setup, checkpoints: string[], extra: string[] = []) {
  const run = await runKvh([
    "verify",
    s.log,
    ...checkpoints.flatMap((c) => ["--checkpoint", c]),
    "--public-key",
    s.pub,
    "--json",
    ...extra,
  ]);
  const report = run.stdout === "" ? undefined : JSON.parse(run.stdout);
  return { code: run.code, report, stderr: run.stderr };
}

function reasonOf(
  report: {
    chain: { failure: { reason: string } | null } | null;
    checkpoint: { failure: { reason: string } | null } | null;
  },
) {
  return report.chain?.failure?.reason ?? report.checkpoint?.failure?.reason ?? null;
}

async function save(path: string, to: string): Promise<string> {
  await Deno.copyFile(path, to);
  return to;
}

Deno.test("kvh trace signs checkpoints and kvh verify matches the log against them", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s, ["--checkpoint-every", "20", "--checkpoint-history"]);
    const note = await Deno.readTextFile(s.checkpoint);
    assert.match(note, /^kvh\/[0-9a-f]{32}\n\d+\n[A-Za-z0-9+/]{43}=\n\n\u2014 node-1 /);
    assert.ok([...Deno.readDirSync(`${s.checkpoint}.d`)].length >= 2);
    const ok = await verify(s, [s.checkpoint]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.report.ok, true);
    assert.equal(ok.report.checkpoint.log_size, ok.report.chain.records);
    const text = await runKvh([
      "verify",
      s.log,
      "--checkpoint",
      s.checkpoint,
      "--public-key",
      s.pub,
    ]);
    assert.match(text.stdout, /^OK .* records, matches /);
  });
});

Deno.test("kvh verify --prove prints one JSON proof that --check-proof accepts with the key alone", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s);
    const run = await runKvh([
      "verify",
      s.log,
      "--prove",
      "5",
      "--checkpoint",
      s.checkpoint,
      "--public-key",
      s.pub,
      "--json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const proof = JSON.parse(run.stdout);
    assert.deepEqual(Object.keys(proof).sort(), [
      "audit_path",
      "leaf_hash",
      "leaf_index",
      "root",
      "tree_size",
    ]);
    assert.equal(proof.leaf_index, 5);
    const proofFile = join(dir, "proof.json");
    await Deno.writeTextFile(proofFile, run.stdout);
    const check = [
      "verify",
      "--check-proof",
      proofFile,
      "--checkpoint",
      s.checkpoint,
      "--public-key",
      s.pub,
    ];
    assert.equal((await runKvh(check)).code, 0);
    proof.leaf_index = 6;
    await Deno.writeTextFile(proofFile, JSON.stringify(proof));
    const bad = await runKvh(check);
    assert.equal(bad.code, 2);
    assert.match(bad.stdout, /^FAILED .*audit path/);
  });
});

Deno.test("attack: truncate the tail and keep logging is refused by the signer and is a fork", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s);
    const offHost = await save(s.checkpoint, join(dir, "off-host.note"));
    const lines = (await Deno.readTextFile(s.log)).split("\n");
    await Deno.writeTextFile(s.log, lines.slice(0, -4).join("\n") + "\n");
    assert.equal((await verify(s, [offHost])).report.checkpoint.failure.reason, "truncated");
    const refused = await runKvh([
      "trace",
      "--log-dir",
      s.logs,
      "--requests",
      "2",
      "--signing-key-file",
      s.key,
      "--checkpoint-file",
      s.checkpoint,
      "--metrics-json",
      join(dir, "c.json"),
      "--metrics-prom",
      join(dir, "m.prom"),
    ]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /truncated/);
    await trace(s, [], false);
    const forked = await verify(s, [offHost]);
    assert.equal(forked.code, 2);
    assert.equal(reasonOf(forked.report), "fork");
  });
});

Deno.test("attack: a deleted active file is truncated, exit 2", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s);
    await Deno.remove(s.log);
    const gone = await verify(s, [s.checkpoint]);
    assert.equal(gone.code, 2);
    assert.equal(reasonOf(gone.report), "truncated");
    await Deno.writeTextFile(s.log, "");
    assert.equal(reasonOf((await verify(s, [s.checkpoint])).report), "truncated");
  });
});

Deno.test("attack: a rollback to an older copy of log and checkpoint is caught by a newer checkpoint", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s);
    const snapshot = join(dir, "snapshot");
    await Deno.mkdir(snapshot);
    for (const entry of Deno.readDirSync(s.logs)) {
      if (entry.isFile) await Deno.copyFile(join(s.logs, entry.name), join(snapshot, entry.name));
    }
    const older = await save(s.checkpoint, join(dir, "older.note"));
    await trace(s);
    const newer = await save(s.checkpoint, join(dir, "newer.note"));
    assert.equal((await verify(s, [older, newer])).code, 0);
    await Deno.remove(s.logs, { recursive: true });
    await Deno.rename(snapshot, s.logs);
    const rolled = await verify(s, [older, newer]);
    assert.equal(rolled.code, 2);
    assert.equal(reasonOf(rolled.report), "rollback");
    assert.equal(reasonOf((await verify(s, [newer])).report), "truncated");
  });
});

Deno.test("attack: deleting the oldest rotated file fails the chain with linkage_mismatch", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s);
    const rotated = [...Deno.readDirSync(s.logs)].map((e) => e.name)
      .filter((n) => /^kv_cache-.*\.log$/.test(n)).sort();
    assert.ok(rotated.length >= 2, rotated.join());
    await Deno.remove(join(s.logs, rotated[0]!));
    const run = await verify(s, [s.checkpoint]);
    assert.equal(run.code, 2);
    assert.equal(reasonOf(run.report), "linkage_mismatch");
  });
});

Deno.test("attack: a checkpoint forged with another key is bad_signature", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s);
    assert.equal((await runKvh(["keygen", "node-1", "--out", join(dir, "evil")])).code, 0);
    const forged = join(dir, "forged.note");
    const evil: Setup = { ...s, key: join(dir, "evil", "node-1.key"), checkpoint: forged };
    // The forger signs a checkpoint of this very log with its own key of the same name.
    const other = { ...evil, logs: join(dir, "copy"), log: join(dir, "copy", "kv_cache.log") };
    await Deno.mkdir(other.logs);
    for (const entry of Deno.readDirSync(s.logs)) {
      if (entry.isFile && !entry.name.endsWith(".lock")) {
        await Deno.copyFile(join(s.logs, entry.name), join(other.logs, entry.name));
      }
    }
    await trace(other);
    const run = await verify(s, [forged]);
    assert.equal(run.code, 2);
    assert.equal(reasonOf(run.report), "bad_signature");
  });
});

Deno.test("attack: a checkpoint of another log is origin_mismatch", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s);
    const other: Setup = {
      ...s,
      logs: join(dir, "other"),
      log: join(dir, "other", "kv_cache.log"),
      checkpoint: join(dir, "other.note"),
    };
    await trace(other);
    const run = await verify(s, [other.checkpoint]);
    assert.equal(run.code, 2);
    assert.equal(reasonOf(run.report), "origin_mismatch");
  });
});

Deno.test("kvh prune with checkpoint flags signs at prune, and the pruned log still verifies", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s);
    const before = await save(s.checkpoint, join(dir, "before.note"));
    const prune = await runKvh([
      "prune",
      "--log-dir",
      s.logs,
      "--max-rotated",
      "1",
      "--signing-key-file",
      s.key,
      "--checkpoint-file",
      s.checkpoint,
    ]);
    assert.equal(prune.code, 0, prune.stderr + prune.stdout);
    const run = await verify(s, [before, s.checkpoint]);
    assert.equal(run.code, 0, JSON.stringify(run.report));
    assert.ok(run.report.checkpoint.consistency_proof.length > 0);
    const proof = await runKvh([
      "verify",
      s.log,
      "--prove",
      String(run.report.checkpoint.log_size - 1),
      "--checkpoint",
      s.checkpoint,
      "--public-key",
      s.pub,
    ]);
    assert.equal(proof.code, 0, proof.stderr);
  });
});

Deno.test("kvh trace refuses half of the checkpoint flags and a checkpoint file that is the log", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    const half = await runKvh(["trace", "--log-dir", s.logs, "--checkpoint-file", s.checkpoint]);
    assert.equal(half.code, 1);
    assert.match(half.stderr, /--signing-key-file and --checkpoint-file go together/);
    const onLog = await runKvh([
      "trace",
      "--log-dir",
      s.logs,
      "--signing-key-file",
      s.key,
      "--checkpoint-file",
      s.log,
    ]);
    assert.equal(onLog.code, 1);
    assert.ok(!onLog.stderr.includes((await Deno.readTextFile(s.key)).split("+")[4]!.trim()));
  });
});

Deno.test("attack: MACs stripped from a keyed, checkpointed log are mac_missing", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    const hmac = join(dir, "hmac.key");
    await Deno.writeTextFile(hmac, "forensic-secret\n", { mode: 0o600 });
    await trace(s, ["--hmac-key-file", hmac]);
    const text = await Deno.readTextFile(s.log);
    await Deno.writeTextFile(s.log, text.replace(/,"mac":"[0-9a-f]{64}"/, ""));
    const run = await verify(s, [s.checkpoint], ["--hmac-key-file", hmac]);
    assert.equal(run.code, 2);
    assert.equal(reasonOf(run.report), "mac_missing");
  });
});

Deno.test("kvh trace takes the checkpoint settings from KV_SIGNING_KEY_FILE and KV_CHECKPOINT_FILE", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    const run = await runKvh(["trace", "--log-dir", s.logs, "--requests", "3", "--tokens", "4"], {
      env: {
        KV_SIGNING_KEY_FILE: s.key,
        KV_CHECKPOINT_FILE: s.checkpoint,
        KV_CHECKPOINT_EVERY: "5",
      },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await verify(s, [s.checkpoint])).code, 0);
    const bad = await runKvh(["trace", "--log-dir", s.logs, "--requests", "1"], {
      env: {
        KV_SIGNING_KEY_FILE: s.key,
        KV_CHECKPOINT_FILE: s.checkpoint,
        KV_CHECKPOINT_EVERY: "0",
      },
    });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /KV_CHECKPOINT_EVERY/);
  });
});

Deno.test("kvh verify refuses incomplete checkpoint arguments with exit 1", async () => {
  await withTempDir(async (dir) => {
    const s = await setUp(dir);
    await trace(s);
    const cases: [string[], RegExp][] = [
      [["verify", s.log, "--checkpoint", s.checkpoint], /need --public-key/],
      [["verify", s.log, "--public-key", s.pub], /one or two --checkpoint/],
      [[
        "verify",
        s.log,
        "--prove",
        "1",
        "--checkpoint",
        s.checkpoint,
        "--checkpoint",
        s.checkpoint,
        "--public-key",
        s.pub,
      ], /exactly one --checkpoint/],
      [
        ["verify", "--check-proof", s.pub, "--checkpoint", s.checkpoint, "--public-key", s.pub],
        /not JSON/,
      ],
      [
        ["verify", s.log, "--checkpoint", join(dir, "none"), "--public-key", s.pub],
        /Cannot read --checkpoint/,
      ],
      [
        ["verify", s.log, "--checkpoint", s.checkpoint, "--public-key", s.checkpoint],
        /Invalid verifier key/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = await runKvh(args);
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, message);
    }
    await Deno.symlink(s.checkpoint, join(dir, "link.note"));
    const link = await runKvh([
      "verify",
      s.log,
      "--checkpoint",
      join(dir, "link.note"),
      "--public-key",
      s.pub,
    ]);
    assert.match(link.stderr, /symlink/);
  });
});
