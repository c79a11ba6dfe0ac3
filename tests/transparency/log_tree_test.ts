import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { withTempDir } from "../_temp_dir.ts";
import { sealV2Record } from "../../lib/forensic/format_v2.ts";
import { GENESIS_V2 } from "../../lib/forensic/types.ts";
import { openForensicLog } from "../../lib/forensic/writer.ts";
import { canonicalBody, readLogTree, recordLeafHash } from "../../lib/transparency/log_tree.ts";
import { CompactRange } from "../../lib/transparency/merkle.ts";
import { MemoryTree } from "../../lib/transparency/memory_tree.ts";
import { listChainFiles } from "../../lib/forensic/chain_files.ts";

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

/** The leaf of every line of a history, through the line's text (canonicalBody). */
async function textLeaves(path: string): Promise<Uint8Array[]> {
  const leaves: Uint8Array[] = [];
  for (const file of await listChainFiles(dirname(path), basename(path))) {
    for (const line of (await Deno.readTextFile(file)).split("\n").slice(0, -1)) {
      leaves.push(recordLeafHash(canonicalBody(line)!));
    }
  }
  return leaves;
}

Deno.test("readLogTree() hashes each body from the bytes read as from the line's text, ASCII or not", async () => {
  await withTempDir(async (dir) => {
    // The first file holds more lines than one run's first table; the second has a record
    // with other characters than ASCII, and a rotate record with the log id after its start.
    const log = await openForensicLog({ dir, hmacKey: KEY, maxBytes: 1_500_000, logId: "abc" });
    for (let i = 0; i < 6000; i++) {
      await log.append("a", i === 5500 ? { i, name: "café ☕" } : { i });
    }
    await log.close();
    const path = join(dir, "kv_cache.log");
    const expected = await textLeaves(path);
    assert.ok((await listChainFiles(dir)).length === 2, "the log rotated once");
    const { tree, logId, conflict } = await readLogTree(path);
    assert.equal(tree.size, expected.length);
    for (let i = 0; i < expected.length; i++) assert.deepEqual(tree.leaf(i), expected[i]);
    assert.deepEqual(tree.root(), new MemoryTree(expected).root());
    assert.deepEqual([logId, conflict], ["abc", undefined]);
  });
});

Deno.test("readLogTree() finds a log id of another log in the middle of a run", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "kv_cache.log");
    const lines: string[] = [];
    let prev = GENESIS_V2;
    for (let seq = 0; seq < 4; seq++) {
      const fields = seq === 0 ? { log_id: "x" } : seq === 2 ? { log_id: "y" } : {};
      const sealed = sealV2Record({ seq, ts: TS, event: "a", prev }, fields);
      lines.push(sealed.line);
      prev = sealed.hash;
    }
    await Deno.writeTextFile(path, lines.join(""));
    const { logId, conflict } = await readLogTree(path);
    assert.equal(logId, "x");
    assert.deepEqual(conflict, { file: "kv_cache.log", line: 3, found: "y" });
    // A line that is not UTF-8 is refused as the text path refused it.
    const bytes = new TextEncoder().encode(lines.join(""));
    bytes[lines[0]!.length + 5] = 0xff;
    await Deno.writeFile(path, bytes);
    await assert.rejects(readLogTree(path), /line 2 is not a complete v2 record/);
  });
});
