import assert from "node:assert/strict";
import { type LogLine, readChunks, readLines } from "../../lib/forensic/reader.ts";

/** A reader over fixed chunks, so chunk boundaries fall where a test wants them. */
function chunks(...parts: (string | Uint8Array)[]) {
  const queue = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p) : p);
  return {
    read(buffer: Uint8Array): Promise<number | null> {
      const next = queue.shift();
      if (next === undefined) return Promise.resolve(null);
      buffer.set(next);
      return Promise.resolve(next.length);
    },
  };
}

async function collect(
  reader: ReturnType<typeof chunks>,
  maxLineBytes?: number,
): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const batch of readLines(reader, { maxLineBytes, chunkBytes: 64 })) out.push(...batch);
  return out;
}

Deno.test("readLines() joins lines split across reads and numbers them from 1", async () => {
  const lines = await collect(chunks("ab", "c\nde", "f\n\ng"));
  assert.deepEqual(lines.map((l) => [l.lineNo, l.text, l.terminated]), [
    [1, "abc", true],
    [2, "def", true],
    [3, "", true],
    [4, "g", false],
  ]);
});

Deno.test("readLines() reports a line over the cap as too_long without keeping it", async () => {
  const lines = await collect(chunks("x".repeat(40), "x".repeat(40), "x\nok\n"), 50);
  assert.deepEqual(lines.map((l) => [l.lineNo, l.text, l.problem]), [[1, undefined, "too_long"], [
    2,
    "ok",
    undefined,
  ]]);
});

Deno.test("readLines() reports an unterminated over-long last line as too_long and torn", async () => {
  const lines = await collect(chunks("x".repeat(60), "y".repeat(60)), 50);
  assert.deepEqual(lines.map((l) => [l.problem, l.terminated]), [["too_long", false]]);
});

Deno.test("readLines() reports invalid UTF-8 per line and keeps the valid lines", async () => {
  const bad = new Uint8Array([0x61, 0xff, 0x0a, 0x62, 0x0a]);
  const lines = await collect(chunks(bad));
  assert.deepEqual(lines.map((l) => [l.text, l.problem]), [[undefined, "invalid_utf8"], [
    "b",
    undefined,
  ]]);
  const carried = await collect(chunks(new Uint8Array([0x61, 0xc3]), new Uint8Array([0x0a])));
  assert.equal(carried[0]?.problem, "invalid_utf8");
});

Deno.test("readLines() decodes a multi-byte character split across reads", async () => {
  const bytes = new TextEncoder().encode("é€😀\n");
  const lines = await collect(chunks(bytes.slice(0, 1), bytes.slice(1, 4), bytes.slice(4)));
  assert.equal(lines[0]?.text, "é€😀");
});

Deno.test("readLines() splits lines one by one when a read holds more than the cap", async () => {
  const lines = await collect(chunks("aaaa\nbbbbbbbbbbbb\ncc\n"), 8);
  assert.deepEqual(lines.map((l) => l.text ?? l.problem), ["aaaa", "too_long", "cc"]);
});

Deno.test("readChunks() gives the same runs with a reused buffer as with one buffer per run", async () => {
  const parts = () => [
    "ab",
    "c\nde",
    "f\n\ng" + "h".repeat(40),
    "x".repeat(30) + "\nok\n",
    "y".repeat(60),
    "y".repeat(60),
    "\nlast",
  ];
  const runs = async (reuseBuffer: boolean) => {
    const out: string[] = [];
    const options = { maxLineBytes: 100, chunkBytes: 64, reuseBuffer };
    for await (const chunk of readChunks(chunks(...parts()), options)) {
      // Copied as it comes: with reuse a run is valid only until the next one.
      const bytes = chunk.kind === "too_long" ? undefined : chunk.bytes;
      out.push(`${chunk.kind}:${bytes === undefined ? "" : new TextDecoder().decode(bytes)}`);
    }
    return out;
  };
  const fresh = await runs(false);
  assert.deepEqual(await runs(true), fresh);
  assert.deepEqual(fresh, [
    "lines:abc",
    "lines:def\n",
    `lines:g${"h".repeat(40)}${"x".repeat(30)}\nok`,
    "too_long:",
    "torn:last",
  ]);
});
