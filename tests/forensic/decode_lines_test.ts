import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeLines } from "../../lib/forensic/reader.ts";

// The obviously correct version: every line decoded on its own by a strict decoder.
function reference(bytes: Uint8Array, maxLineBytes: number) {
  const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const out = [];
  let at = 0;
  while (true) {
    let end = bytes.indexOf(0x0a, at);
    if (end === -1) end = bytes.length;
    if (end - at > maxLineBytes) out.push({ problem: "too_long" });
    else {
      try {
        out.push(strict.decode(bytes.subarray(at, end)));
      } catch {
        out.push({ problem: "invalid_utf8" });
      }
    }
    if (end === bytes.length) return out;
    at = end + 1;
  }
}

const encoder = new TextEncoder();
// Pieces that matter to a UTF-8 decoder: ASCII, multi-byte and astral characters, a real
// U+FFFD, a BOM, truncated and overlong sequences, an encoded lone surrogate, stray bytes.
const piece = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 6 }).map((text) => encoder.encode(text)),
  fc.constantFrom(
    encoder.encode("\uFFFD"),
    new Uint8Array([0xef, 0xbb, 0xbf]),
    new Uint8Array([0xe2, 0x82]),
    new Uint8Array([0xc0, 0xaf]),
    new Uint8Array([0xed, 0xa0, 0x80]),
    new Uint8Array([0xff]),
    new Uint8Array([0x80]),
    new Uint8Array([0x0a]),
  ),
);

Deno.test("decodeLines() decodes exactly as a strict per-line decoder, invalid bytes included", () => {
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 30 }), fc.constantFrom(8, 1 << 20), (pieces, max) => {
      const bytes = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of pieces) {
        bytes.set(p, at);
        at += p.length;
      }
      assert.deepEqual(decodeLines(bytes, max), reference(bytes, max));
    }),
    { seed: 1310, numRuns: 2000 },
  );
});

Deno.test("decodeLines() keeps a real U+FFFD and reports the invalid line beside it", () => {
  const bytes = new Uint8Array([...encoder.encode("ok \uFFFD\n"), 0xff, 0x0a, 0x41]);
  assert.deepEqual(decodeLines(bytes), ["ok \uFFFD", { problem: "invalid_utf8" }, "A"]);
});
