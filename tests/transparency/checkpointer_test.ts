import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../_temp_dir.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { checkpointer } from "../../lib/transparency/checkpointer.ts";
import { openCheckpoint } from "../../lib/transparency/checkpoint.ts";
import { readLogTree } from "../../lib/transparency/log_tree.ts";
import { generateNoteKey, parseSignerKey, parseVerifierKey } from "../../lib/transparency/note.ts";

const keys = generateNoteKey("node-1");
const signer = parseSignerKey(keys.signerKey);
const verifier = parseVerifierKey(keys.verifierKey);

async function readCheckpoint(path: string) {
  return openCheckpoint(await Deno.readTextFile(path), verifier);
}

Deno.test("checkpointer() signs every N records and at close, covering only durable records", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "cp", "checkpoint");
    const log = await openForensicLog({
      dir,
      logId: "00112233445566778899aabbccddeeff",
      commitRecords: 4,
      observe: checkpointer({ signer, checkpointFile: file, everyRecords: 10, history: true }),
    });
    for (let i = 0; i < 25; i++) await log.append("allocate", { n: i });
    await log.flush();
    const mid = await readCheckpoint(file);
    assert.equal(mid.origin, "kvh/00112233445566778899aabbccddeeff");
    assert.ok(mid.size >= 20 && mid.size <= 25, `size ${mid.size}`);
    await log.close();
    const last = await readCheckpoint(file);
    assert.equal(last.size, 25);
    const { tree, logId } = await readLogTree(join(dir, "kv_cache.log"));
    assert.equal(logId, "00112233445566778899aabbccddeeff");
    assert.deepEqual(last.root, tree.root(25));
    assert.deepEqual(mid.root, tree.root(mid.size));
    const kept = [...Deno.readDirSync(`${file}.d`)].map((e) => e.name).sort();
    assert.ok(kept.includes("25.note") && kept.length >= 3, kept.join());
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
  });
});

Deno.test("checkpointer() signs at rotation and continues the tree across restarts", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "checkpoint");
    const open = () =>
      openForensicLog({
        dir,
        maxBytes: 600,
        observe: checkpointer({ signer, checkpointFile: file, everyRecords: 1000 }),
      });
    let log = await open();
    for (let i = 0; i < 6; i++) await log.append("allocate", { tenant_id: "t1", i });
    await log.close();
    log = await open();
    for (let i = 0; i < 6; i++) await log.append("free", { i });
    await log.close();
    const checkpoint = await readCheckpoint(file);
    const { tree } = await readLogTree(join(dir, "kv_cache.log"));
    assert.equal(checkpoint.size, tree.size);
    assert.deepEqual(checkpoint.root, tree.root());
    const rotated = [...Deno.readDirSync(dir)].filter((e) => /^kv_cache-.*\.log$/.test(e.name));
    assert.ok(rotated.length > 0);
  });
});

Deno.test("checkpointer() rebuilds the tree when records were appended without it", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "checkpoint");
    const observe = checkpointer({ signer, checkpointFile: file });
    let log = await openForensicLog({ dir, observe });
    await log.append("a", {});
    await log.close();
    log = await openForensicLog({ dir });
    await log.append("b", {});
    await log.close();
    log = await openForensicLog({ dir, observe });
    await log.append("c", {});
    await log.close();
    const { tree } = await readLogTree(join(dir, "kv_cache.log"));
    const checkpoint = await readCheckpoint(file);
    assert.equal(checkpoint.size, 3);
    assert.deepEqual(checkpoint.root, tree.root());
  });
});

Deno.test("checkpointer() refuses to continue a log truncated below its last checkpoint", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "checkpoint");
    const observe = checkpointer({ signer, checkpointFile: file });
    const log = await openForensicLog({ dir, observe });
    for (let i = 0; i < 5; i++) await log.append("a", { i });
    await log.close();
    const path = join(dir, "kv_cache.log");
    const lines = (await Deno.readTextFile(path)).split("\n");
    await Deno.writeTextFile(path, lines.slice(0, 3).join("\n") + "\n");
    await assert.rejects(openForensicLog({ dir, observe }), /truncated/);
    assert.equal((await readCheckpoint(file)).size, 5);
  });
});

Deno.test("checkpointer() refuses a checkpoint file of another log or another key", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "checkpoint");
    const other = await Deno.makeTempDir({ dir });
    let log = await openForensicLog({
      dir: other,
      observe: checkpointer({ signer, checkpointFile: file }),
    });
    await log.append("a", {});
    await log.close();
    await assert.rejects(
      openForensicLog({ dir, observe: checkpointer({ signer, checkpointFile: file }) }),
      /belongs to log kvh\//,
    );
    const stranger = parseSignerKey(generateNoteKey("node-2").signerKey);
    await assert.rejects(
      openForensicLog({
        dir: other,
        observe: checkpointer({ signer: stranger, checkpointFile: file }),
      }),
      /this key cannot verify/,
    );
    log = await openForensicLog({
      dir: other,
      observe: checkpointer({ signer, checkpointFile: file }),
    });
    await log.close();
  });
});

Deno.test("checkpointer() makes appends fail when the checkpoint cannot be written", async () => {
  await withTempDir(async (dir) => {
    const cpDir = join(dir, "cp");
    await Deno.mkdir(cpDir);
    const log = await openForensicLog({
      dir,
      observe: checkpointer({ signer, checkpointFile: join(cpDir, "checkpoint"), everyRecords: 1 }),
    });
    // The checkpoint volume goes away under the writer.
    await Deno.remove(cpDir);
    await Deno.writeTextFile(cpDir, "");
    await log.append("a", {});
    await assert.rejects(log.flush(), /Cannot write checkpoint/);
    await assert.rejects(log.append("b", {}), /Cannot write checkpoint/);
    await log.close().catch(() => {});
  });
});

Deno.test("checkpointer() refuses a legacy log without a log id and a symlinked checkpoint file", async () => {
  await withTempDir(async (dir) => {
    const observe = checkpointer({ signer, checkpointFile: join(dir, "checkpoint") });
    const path = join(dir, "kv_cache.log");
    const log = await openForensicLog({ dir });
    await log.append("a", {});
    await log.close();
    // An old log: its first record carries no log id.
    const text = await Deno.readTextFile(path);
    const legacy = join(dir, "legacy");
    await Deno.mkdir(legacy);
    const { sealV2Record } = await import("../../lib/forensic/format_v2.ts");
    const { GENESIS_V2 } = await import("../../lib/forensic/types.ts");
    const old = sealV2Record({
      seq: 0,
      ts: "2026-01-01T00:00:00.000Z",
      event: "a",
      prev: GENESIS_V2,
    }, {});
    await Deno.writeTextFile(join(legacy, "kv_cache.log"), old.line);
    await assert.rejects(
      openForensicLog({
        dir: legacy,
        observe: checkpointer({ signer, checkpointFile: join(legacy, "cp") }),
      }),
      /no log id/,
    );
    assert.ok(text.includes('"log_id":'));
    await Deno.symlink(join(dir, "elsewhere"), join(dir, "checkpoint"));
    await assert.rejects(openForensicLog({ dir, observe }), /symlink/);
    assert.throws(() => checkpointer({ signer, checkpointFile: "x", everyRecords: 0 }), RangeError);
  });
});

Deno.test("checkpointer() refuses to continue a re-hashed rewrite of its log (fork)", async () => {
  await withTempDir(async (dir) => {
    const observe = checkpointer({ signer, checkpointFile: join(dir, "checkpoint") });
    const log = await openForensicLog({ dir, logId: "feed", observe });
    for (let i = 0; i < 3; i++) await log.append("a", { i });
    await log.close();
    const { sealV2Record } = await import("../../lib/forensic/format_v2.ts");
    const { GENESIS_V2 } = await import("../../lib/forensic/types.ts");
    let prev = GENESIS_V2;
    let text = "";
    for (let seq = 0; seq < 3; seq++) {
      const fields = seq === 0 ? { log_id: "feed", i: 9 } : { i: 9 };
      const sealed = sealV2Record(
        { seq, ts: "2026-01-01T00:00:00.000Z", event: "a", prev },
        fields,
      );
      text += sealed.line;
      prev = sealed.hash;
    }
    await Deno.writeTextFile(join(dir, "kv_cache.log"), text);
    await assert.rejects(
      openForensicLog({ dir, observe }),
      /do not match its last checkpoint \(fork\)/,
    );
  });
});
