import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../_temp_dir.ts";
import { sealV2Record } from "../../lib/forensic/format_v2.ts";
import { GENESIS_V2 } from "../../lib/forensic/types.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { canonicalBody, readLogTree, recordLeafHash } from "../../lib/transparency/log_tree.ts";
import { CompactRange } from "../../lib/transparency/merkle.ts";

const KEY = new TextEncoder().encode("k");
const TS = "2026-01-01T00:00:00.000Z";

Deno.test("canonicalBody() takes hash and mac off a line and refuses other lines", () => {
  for (const key of [undefined, KEY]) {
    const sealed = sealV2Record({ seq: 0, ts: TS, event: "a", prev: GENESIS_V2 }, { x: 1 }, {
      key,
    });
    assert.equal(canonicalBody(sealed.line.slice(0, -1)), sealed.body);
    assert.deepEqual(recordLeafHash(sealed.body).length, 32);
  }
  assert.equal(canonicalBody('{"a":1}'), undefined);
  assert.equal(canonicalBody('{"a":"b"}'), undefined);
  assert.equal(canonicalBody("not json"), undefined);
});

Deno.test("readLogTree() refuses a line that is not a complete v2 record", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "kv_cache.log");
    const sealed = sealV2Record({ seq: 0, ts: TS, event: "a", prev: GENESIS_V2 }, {});
    await Deno.writeTextFile(path, sealed.line + '{"v":1}\n');
    await assert.rejects(readLogTree(path), /line 2 is not a complete v2 record/);
    await Deno.writeTextFile(path, sealed.line.slice(0, -1));
    await assert.rejects(readLogTree(path), /line 1 is not a complete v2 record/);
    await assert.rejects(
      readLogTree(join(dir, "missing", "x.log"), { activeOnly: true }),
      /Cannot read/,
    );
  });
});

Deno.test("readLogTree() needs the compact range of the records a history starts after", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "kv_cache.log");
    const first = sealV2Record({ seq: 5, ts: TS, event: "rotate", prev: "ab".repeat(32) }, {
      log_id: "x",
    });
    const removed = (
      range: unknown,
    ) => [{
      file: "f",
      first_seq: 0,
      last_seq: 4,
      last_hash: "ab".repeat(32),
      compact_range: range,
    }];
    const withRange = (range: unknown) =>
      sealV2Record({ seq: 6, ts: TS, event: "prune", prev: first.hash }, {
        log_id: "x",
        removed: removed(range),
        reason: "r",
      }).line;
    await Deno.writeTextFile(path, first.line);
    await assert.rejects(readLogTree(path), /no prune record carries the compact range/);
    await Deno.writeTextFile(path, first.line + withRange(["AAAA"]));
    await assert.rejects(readLogTree(path), /compact range of seq 0 to 4 is malformed/);
    const range = new CompactRange();
    for (let i = 0; i < 5; i++) range.append(recordLeafHash(`${i}`));
    const hashes = range.hashes.map((h) => btoa(String.fromCharCode(...h)));
    await Deno.writeTextFile(path, first.line + withRange(hashes));
    const { tree, logId } = await readLogTree(path);
    assert.deepEqual([tree.size, tree.prunedSize, logId], [7, 5, "x"]);
  });
});

Deno.test("readLogTree() reads a rotated history in seq order with its log id", async () => {
  await withTempDir(async (dir) => {
    const log = await openForensicLog({ dir, maxBytes: 300, logId: "abc" });
    for (let i = 0; i < 8; i++) await log.append("a", { i });
    await log.close();
    const { tree, logId, conflict } = await readLogTree(join(dir, "kv_cache.log"));
    assert.equal(logId, "abc");
    assert.equal(conflict, undefined);
    assert.ok(tree.size > 8);
  });
});
