import assert from "node:assert/strict";
import { join } from "node:path";
import { KvhError } from "../../lib/errors.ts";
import {
  chainOrder,
  listChainFiles,
  logStem,
  parseRotatedName,
  rotatedFileName,
} from "../../lib/forensic/chain_files.ts";

Deno.test("rotatedFileName() follows §4: <stem>-<UTC yyyymmddThhmmssZ>-<first seq>.log", () => {
  assert.equal(
    rotatedFileName("kv_cache.log", new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), 42),
    "kv_cache-20260102T030405Z-42.log",
  );
  assert.equal(rotatedFileName("audit.jsonl", new Date(0), 0), "audit-19700101T000000Z-0.log");
});

Deno.test("logStem() drops the last extension only", () => {
  assert.deepEqual([
    logStem("kv_cache.log"),
    logStem("a.b.log"),
    logStem("plain"),
    logStem(".hidden"),
  ], ["kv_cache", "a.b", "plain", ".hidden"]);
});

Deno.test("parseRotatedName() accepts only exact v1 and v2 rotated names", () => {
  assert.deepEqual(parseRotatedName("kv_cache.log", "kv_cache-20260101T000000Z-7.log"), {
    format: "v2",
    position: 7n,
  });
  assert.deepEqual(parseRotatedName("kv_cache.log", "kv_cache-1767225609.log"), {
    format: "v1",
    position: 1767225609n,
  });
  for (
    const name of [
      "kv_cache-2-backup.log",
      "kv_cache-foo.log",
      "kv_cache.log",
      "kv_cache-20260101T000000Z-07.log",
      "kv_cachex-1.log",
      "other-1767225609.log",
    ]
  ) {
    assert.equal(parseRotatedName("kv_cache.log", name), undefined, name);
  }
});

Deno.test("listChainFiles() orders v1 files by time, then v2 files by first seq, then the active file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const name of [
        "kv_cache-20260101T000009Z-100.log",
        "kv_cache-20260101T000010Z-9.log",
        "kv_cache-1767225700.log",
        "kv_cache-1767225609.log",
        "kv_cache-2-backup.log",
        "notes.txt",
      ]
    ) {
      await Deno.writeTextFile(join(dir, name), "");
    }
    await Deno.mkdir(join(dir, "kv_cache-20260101T000000Z-0.log"));
    const files = (await listChainFiles(dir)).map((f) => f.slice(dir.length + 1));
    assert.deepEqual(files, [
      "kv_cache-1767225609.log",
      "kv_cache-1767225700.log",
      "kv_cache-20260101T000010Z-9.log",
      "kv_cache-20260101T000009Z-100.log",
      "kv_cache.log",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listChainFiles() throws KvhError for a directory it cannot list", async () => {
  await assert.rejects(
    listChainFiles("/nonexistent-kvh-dir"),
    (e) => e instanceof KvhError && e.code === "log_unreadable",
  );
});

Deno.test("chainOrder() merges two listings of a changing directory in chain order, once each", () => {
  const dir = "/logs";
  const first = [
    `${dir}/kv_cache-20261201T220843Z-39300.log`,
    `${dir}/kv_cache-20261201T220843Z-39312.log`,
  ];
  // The second listing holds the file the first one missed while it was being created.
  const second = [
    `${dir}/kv_cache-20261201T220843Z-39300.log`,
    `${dir}/kv_cache-20261201T220843Z-39304.log`,
    `${dir}/kv_cache-20261201T220843Z-39312.log`,
  ];
  assert.deepEqual(chainOrder("kv_cache.log", [...first, ...second]), second);
  assert.deepEqual(
    chainOrder("kv_cache.log", [
      `${dir}/kv_cache-20261201T220843Z-2.log`,
      `${dir}/kv_cache-1700000000.log`,
    ]),
    [`${dir}/kv_cache-1700000000.log`, `${dir}/kv_cache-20261201T220843Z-2.log`],
  );
  assert.throws(() => chainOrder("kv_cache.log", [`${dir}/other.log`]), TypeError);
});
