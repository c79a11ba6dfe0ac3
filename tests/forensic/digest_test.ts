import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import fc from "fast-check";
import { constantTimeEqual, hmacHex, sha256Hex, toHex } from "../../lib/forensic/digest.ts";
import { JsonObject, parseJson } from "../../lib/forensic/_json.ts";
import {
  canonicalV1,
  checkV1Record,
  GENESIS_V1,
  sealV1Record,
} from "../../lib/forensic/format_v1.ts";
import { sealV2Record, splitV2Line } from "../../lib/forensic/format_v2.ts";
import { GENESIS_V2 } from "../../lib/forensic/types.ts";
import { loadNativeDigests } from "../../lib/forensic/native_digest.ts";

const SEED = 1310;
// Keys shorter than, equal to and longer than the 64-byte block (hashed first by RFC 2104).
const keys = fc.uint8Array({ minLength: 1, maxLength: 100 });
const messages = fc.string({ unit: "grapheme", maxLength: 300 });
const fieldValues = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 8 }).filter((name) =>
    !/^(v|seq|ts|event|prev|hash|mac|prev_hash|curr_hash|hmac)$/.test(name)
  ),
  fc.oneof(fc.string({ unit: "grapheme", maxLength: 40 }), fc.integer(), fc.boolean()),
  { maxKeys: 6 },
);

function nodeHmac(key: Uint8Array, data: string): string {
  return createHmac("sha256", key).update(data).digest("hex");
}

Deno.test("hmacHex() equals node:crypto createHmac for any key and message", () => {
  fc.assert(
    fc.property(keys, messages, (key, message) => {
      assert.equal(hmacHex(key, message), nodeHmac(key, message));
      // The memoised key states must not leak into the next message.
      assert.equal(hmacHex(key, message + "x"), nodeHmac(key, message + "x"));
    }),
    { seed: SEED, numRuns: 300 },
  );
});

Deno.test("hmacHex() of a v1 record equals createHmac over prev_hash and canonical text", () => {
  fc.assert(
    fc.property(keys, fieldValues, (key, fields) => {
      const { line } = sealV1Record(fields, GENESIS_V1, { key });
      const record = parseJson(line) as JsonObject;
      const curr = record.get("curr_hash") as string;
      // The MAC covers exactly the bytes the hash covers: prev_hash + the canonical record
      // without curr_hash and hmac.
      const unsealed = new JsonObject(
        record.entries.filter(([name]) => name !== "curr_hash" && name !== "hmac"),
      );
      const message = GENESIS_V1 + canonicalV1(unsealed);
      assert.equal(createHash("sha256").update(message).digest("hex"), curr);
      assert.equal(record.get("hmac"), nodeHmac(key, message));
      assert.equal(checkV1Record(record, key).macOk, true);
    }),
    { seed: SEED, numRuns: 150 },
  );
});

Deno.test("hmacHex() of a v2 record equals createHmac over the canonical body", () => {
  fc.assert(
    fc.property(keys, fieldValues, (key, fields) => {
      const sealed = sealV2Record(
        { seq: 0, ts: "2026-01-01T00:00:00.000Z", event: "allocate", prev: GENESIS_V2 },
        fields,
        { key },
      );
      const split = splitV2Line(sealed.line.slice(0, -1));
      assert.ok(split !== undefined);
      assert.equal(split.body, sealed.body);
      assert.equal(split.hash, createHash("sha256").update(sealed.body).digest("hex"));
      assert.equal(split.mac, nodeHmac(key, sealed.body));
    }),
    { seed: SEED, numRuns: 150 },
  );
});

Deno.test("sha256Hex() equals node:crypto createHash for strings and bytes", () => {
  fc.assert(
    fc.property(messages, fc.uint8Array({ maxLength: 200 }), (text, bytes) => {
      assert.equal(sha256Hex(text), createHash("sha256").update(text).digest("hex"));
      assert.equal(sha256Hex(bytes), createHash("sha256").update(bytes).digest("hex"));
    }),
    { seed: SEED, numRuns: 200 },
  );
});

Deno.test("constantTimeEqual() is true only for identical strings, repeats included", () => {
  const cases: [string, string, boolean][] = [
    ["abc", "abc", true],
    ["abc", "abd", false],
    ["abc", "abcabc", false],
    ["abcabc", "abc", false],
    ["a", "aaaa", false],
    ["aaaa", "a", false],
    ["Abc", "abc", false],
    ["", "abc", false],
    ["abc", "", false],
    ["", "", true],
  ];
  for (const [presented, expected, want] of cases) {
    assert.equal(constantTimeEqual(presented, expected), want, `${presented} vs ${expected}`);
  }
  fc.assert(
    fc.property(fc.string(), fc.string(), (a, b) => {
      assert.equal(constantTimeEqual(a, b), a === b);
    }),
    { seed: SEED, numRuns: 500 },
  );
});

Deno.test("toHex() writes two lowercase digits per byte", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      assert.equal(
        toHex(bytes),
        Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""),
      );
    }),
    { seed: SEED, numRuns: 200 },
  );
});

Deno.test(
  "sha256Hex() gives node:crypto's digest through the native library too",
  { ignore: loadNativeDigests() === undefined },
  () => {
    // Loaded above: sha256Hex now takes the native path for all but the longest strings.
    const inputs = ["", "abc", "é€😀", "x".repeat(65_536), "y".repeat(65_537)];
    for (const input of inputs) {
      const expected = createHash("sha256").update(input).digest("hex");
      assert.equal(sha256Hex(input), expected, `${input.length} units`);
      assert.equal(sha256Hex(new TextEncoder().encode(input)), expected);
    }
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (text) => {
        assert.equal(sha256Hex(text), createHash("sha256").update(text).digest("hex"));
      }),
      { seed: SEED },
    );
  },
);
