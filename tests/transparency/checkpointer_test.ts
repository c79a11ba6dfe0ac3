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
