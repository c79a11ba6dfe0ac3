import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../_temp_dir.ts";
import { sealV2Record } from "../../lib/forensic/format_v2.ts";
import { GENESIS_V2 } from "../../lib/forensic/types.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { pruneLog } from "../../lib/retention/prune_log.ts";
import { signCheckpoint } from "../../lib/transparency/checkpoint.ts";
import { checkpointer } from "../../lib/transparency/checkpointer.ts";
import { readLogTree } from "../../lib/transparency/log_tree.ts";
import { generateNoteKey, parseSignerKey, parseVerifierKey } from "../../lib/transparency/note.ts";
import {
  checkInclusionProof,
  proveInclusion,
  verifyCheckpoints,
} from "../../lib/transparency/verify_checkpoints.ts";

const keys = generateNoteKey("node-1");
const signer = parseSignerKey(keys.signerKey);
const verifier = parseVerifierKey(keys.verifierKey);
const LOG_ID = "0123456789abcdef0123456789abcdef";

async function writeLog(dir: string, records: number): Promise<string> {
  const log = await openForensicLog({
    dir,
    logId: LOG_ID,
    observe: checkpointer({ signer, checkpointFile: join(dir, "checkpoint") }),
  });
  for (let i = 0; i < records; i++) await log.append("allocate", { i });
  await log.close();
  return join(dir, "kv_cache.log");
}

Deno.test("verifyCheckpoints() reports log_id_mismatch for records of two logs in one chain", async () => {
  await withTempDir(async (dir) => {
    // A re-hashed splice: the chain links, but a prune record carries another log's id.
    const a = sealV2Record(
      { seq: 0, ts: "2026-01-01T00:00:00.000Z", event: "allocate", prev: GENESIS_V2 },
      { log_id: LOG_ID },
    );
    const b = sealV2Record(
      { seq: 1, ts: "2026-01-01T00:00:00.001Z", event: "prune", prev: a.hash },
      { log_id: "ffffffffffffffffffffffffffffffff", removed: [], reason: "x" },
    );
    const path = join(dir, "kv_cache.log");
    await Deno.writeTextFile(path, a.line + b.line);
    const { tree } = await readLogTree(path);
    const note = signCheckpoint({ origin: `kvh/${LOG_ID}`, size: 2, root: tree.root() }, signer);
    const report = await verifyCheckpoints(path, [{ name: "cp", note }], verifier);
    assert.equal(report.failure?.reason, "log_id_mismatch");
  });
});

Deno.test("verifyCheckpoints() reports two checkpoints of one size with two roots as a fork", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, 5);
    const { tree } = await readLogTree(path);
    const good = signCheckpoint({ origin: `kvh/${LOG_ID}`, size: 3, root: tree.root(3) }, signer);
    const other = signCheckpoint({ origin: `kvh/${LOG_ID}`, size: 3, root: tree.root(2) }, signer);
    const split = await verifyCheckpoints(path, [{ name: "a", note: good }, {
      name: "b",
      note: other,
    }], verifier);
    assert.equal(split.failure?.reason, "fork");
    const same = await verifyCheckpoints(path, [{ name: "a", note: good }, {
      name: "b",
      note: good,
    }], verifier);
    assert.deepEqual([same.ok, same.consistency_proof], [true, []]);
    const later = await Deno.readTextFile(join(dir, "checkpoint"));
    const pair = await verifyCheckpoints(path, [{ name: "new", note: later }, {
      name: "old",
      note: good,
    }], verifier);
    assert.equal(pair.ok, true);
    assert.ok(pair.consistency_proof!.length > 0);
  });
});

Deno.test("verifyCheckpoints() reports a note that is no checkpoint as malformed_checkpoint", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, 2);
    const report = await verifyCheckpoints(path, [{ name: "x", note: "not a note\n" }], verifier);
    assert.equal(report.failure?.reason, "malformed_checkpoint");
    await assert.rejects(verifyCheckpoints(path, [], verifier), RangeError);
  });
});

Deno.test("checkInclusionProof() refuses malformed proofs and proofs of another tree", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, 9);
    const input = { name: "cp", note: await Deno.readTextFile(join(dir, "checkpoint")) };
    const proof = await proveInclusion(path, 3, input, verifier);
    assert.equal(checkInclusionProof(proof, input, verifier), null);
    assert.match(checkInclusionProof({ ...proof, tree_size: 8 }, input, verifier)!, /tree size 8/);
    assert.match(checkInclusionProof({ leaf_index: 1 }, input, verifier)!, /malformed proof/);
    const stranger = parseVerifierKey(generateNoteKey("node-1").verifierKey);
    assert.match(checkInclusionProof(proof, input, stranger)!, /^bad_signature/);
    await assert.rejects(proveInclusion(path, 9, input, verifier), /covers seq 0 to 8/);
  });
});

Deno.test("verifyCheckpoints() cannot check a checkpoint older than what prune removed", async () => {
  await withTempDir(async (dir) => {
    const log = await openForensicLog({ dir, logId: LOG_ID, maxBytes: 300 });
    for (let i = 0; i < 12; i++) await log.append("allocate", { i });
    await log.close();
    const path = join(dir, "kv_cache.log");
    const { tree } = await readLogTree(path);
    const old = signCheckpoint({ origin: `kvh/${LOG_ID}`, size: 3, root: tree.root(3) }, signer);
    const latest = signCheckpoint(
      { origin: `kvh/${LOG_ID}`, size: tree.size, root: tree.root() },
      signer,
    );
    const report = await pruneLog({ dir, maxRotated: 0 });
    assert.equal(report.ok, true);
    const after = await verifyCheckpoints(path, [{ name: "latest", note: latest }], verifier);
    assert.equal(after.ok, true);
    await assert.rejects(
      verifyCheckpoints(path, [{ name: "old", note: old }], verifier),
      /covers 3 records and the log was pruned up to seq/,
    );
  });
});
