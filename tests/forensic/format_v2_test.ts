import assert from "node:assert/strict";
import canonicalize from "canonicalize";
import fc from "fast-check";
import { canonicalBodyV2, canonicalizeV2 } from "../../lib/forensic/canonicalize_v2.ts";
import { hmacHex, sha256Hex } from "../../lib/forensic/digest.ts";
import {
  checkV2Line,
  sealV2Record,
  sealV2RecordInto,
  splitV2Line,
} from "../../lib/forensic/format_v2.ts";
import { GENESIS_V2 } from "../../lib/forensic/types.ts";

const SEED = 424242;
const HEADER = { seq: 0, ts: "2026-01-01T00:00:00.000Z", event: "allocate", prev: GENESIS_V2 };
const KEY = new TextEncoder().encode("k");

/** JSON values format v2 can carry: safe integers, finite doubles, well-formed strings. */
const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) =>
      !Number.isInteger(d) || Number.isSafeInteger(d)
    ),
    fc.constantFrom(
      0,
      -0,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      1e-7,
      5e-324,
      1.5e-300,
      0.1 + 0.2,
      123456789.125,
    ),
    fc.string({ unit: "grapheme" }),
    fc.string({ unit: "binary" }),
    fc.string({
      unit: fc.constantFrom(
        "\u0000",
        "\u001f",
        "\u007f",
        "\u2028",
        "\ufeff",
        "\ud83d\ude00",
        '"',
        "\\",
      ),
    }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: "binary" }), tie("value"), { maxKeys: 5 }),
  ),
})).value;

Deno.test("canonicalizeV2() matches npm canonicalize (RFC 8785) on random values", () => {
  fc.assert(
    fc.property(jsonValue, (value) => {
      assert.equal(canonicalizeV2(value), canonicalize(value));
    }),
    { seed: SEED, numRuns: 2000 },
  );
});

Deno.test("canonicalizeV2() sorts keys by UTF-16 code units, integer-like keys as strings", () => {
  assert.equal(
    canonicalizeV2({ "2": 1, "10": 2, "\ud83d\ude00": 3, "\ue000": 4 }),
    '{"10":2,"2":1,"\ud83d\ude00":3,"\ue000":4}',
  );
});

Deno.test("canonicalizeV2() throws TypeError on values v2 cannot carry exactly", () => {
  for (
    const bad of [
      NaN,
      Infinity,
      2 ** 53,
      "\ud800",
      10n,
      () => 1,
      new Date(0),
      [undefined],
      Symbol("s"),
    ]
  ) {
    assert.throws(() => canonicalizeV2(bad), TypeError, String(bad));
  }
  assert.throws(() => canonicalizeV2({ ["\udc00"]: 1 }), TypeError);
  let deep: unknown = 1;
  for (let i = 0; i < 300; i++) deep = [deep];
  assert.throws(() => canonicalizeV2(deep), TypeError);
});

Deno.test("canonicalizeV2() leaves out object members that are undefined", () => {
  assert.equal(canonicalizeV2({ a: undefined, b: 1 }), '{"b":1}');
});

Deno.test("sealV2Record() writes the canonical body with hash and mac spliced before the brace", () => {
  const sealed = sealV2Record(HEADER, { tenant_id: "t1", n: 1 }, { key: KEY });
  const body = '{"event":"allocate","n":1,"prev":"' + GENESIS_V2 +
    '","seq":0,"tenant_id":"t1","ts":"2026-01-01T00:00:00.000Z","v":2}';
  assert.equal(sealed.body, body);
  assert.equal(sealed.hash, sha256Hex(body));
  assert.equal(
    sealed.line,
    body.slice(0, -1) + `,"hash":"${sealed.hash}","mac":"${hmacHex(KEY, body)}"}\n`,
  );
  assert.equal(sealed.record.mac, hmacHex(KEY, body));
  assert.equal(canonicalBodyV2(JSON.parse(sealed.line)), body);
});

Deno.test("sealV2Record() takes the slow serialiser for integer-like and __proto__ keys", () => {
  const fields = JSON.parse('{"__proto__":{"x":1},"10":"a","2":"b","nested":{"b":1,"a":2}}');
  const sealed = sealV2Record(HEADER, fields);
  assert.equal(sealed.body, canonicalize(JSON.parse(sealed.body)));
  assert.ok(sealed.body.startsWith('{"10":"a","2":"b","__proto__":{"x":1},"event"'));
  assert.equal(checkV2Line(sealed.line.slice(0, -1), undefined).ok, true);
});

Deno.test("sealV2Record() refuses reserved field names and unsafe numbers", () => {
  for (const name of ["v", "seq", "ts", "event", "prev", "hash", "mac"]) {
    assert.throws(() => sealV2Record(HEADER, { [name]: 1 }), TypeError);
  }
  assert.throws(() => sealV2Record(HEADER, { n: 2 ** 60 }), TypeError);
  assert.throws(() => sealV2Record(HEADER, { n: [1, NaN] }), TypeError);
  assert.throws(() => sealV2Record(HEADER, { n: { m: -Infinity } }), TypeError);
  assert.throws(() => sealV2Record(HEADER, { n: new Map() }), TypeError);
  assert.throws(() => sealV2Record(HEADER, { n: [undefined] }), TypeError);
  assert.throws(() => sealV2Record(HEADER, { n: "\udfff" }), TypeError);
  assert.throws(() => sealV2Record(HEADER, { n: () => 1 }), TypeError);
  let deep: unknown = 1;
  for (let i = 0; i < 300; i++) deep = { d: deep };
  assert.throws(() => sealV2Record(HEADER, { deep }), TypeError);
});

Deno.test("checkV2Line() accepts every sealed record of random fields", () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string(), jsonValue, { maxKeys: 6 }), (fields) => {
      for (const name of ["v", "seq", "ts", "event", "prev", "hash", "mac"]) delete fields[name];
      const sealed = sealV2Record(HEADER, fields, { key: KEY });
      const checked = checkV2Line(sealed.line.slice(0, -1), KEY);
      assert.equal(checked.ok, true, checked.ok ? "" : checked.detail);
    }),
    { seed: SEED, numRuns: 1000 },
  );
});

Deno.test("sealV2RecordInto() writes the bytes of sealV2Record's line, keyed or not", () => {
  const decoder = new TextDecoder();
  fc.assert(
    fc.property(
      fc.dictionary(fc.string(), jsonValue, { maxKeys: 6 }),
      fc.boolean(),
      fc.nat(64),
      (fields, keyed, at) => {
        for (const name of ["v", "seq", "ts", "event", "prev", "hash", "mac"]) delete fields[name];
        const options = keyed ? { key: KEY } : {};
        const expected = sealV2Record(HEADER, fields, options);
        const target = new Uint8Array(at + expected.line.length * 3 + 200).fill(0x2a);
        const sealed = sealV2RecordInto(HEADER, fields, options, target, at)!;
        assert.equal(decoder.decode(target.subarray(at, at + sealed.bytes)), expected.line);
        assert.deepEqual(target.subarray(0, at), new Uint8Array(at).fill(0x2a));
        assert.equal(sealed.hash, expected.hash);
        assert.equal(sealed.body, expected.body);
        assert.deepEqual(sealed.record, expected.record);
      },
    ),
    { seed: SEED, numRuns: 500 },
  );
});

Deno.test("sealV2RecordInto() returns undefined when the line may not fit after the offset", () => {
  const fields = { note: "\u00e9".repeat(100) };
  const line = sealV2Record(HEADER, fields, { key: KEY }).line;
  const tooShort = new Uint8Array(line.length);
  assert.equal(sealV2RecordInto(HEADER, fields, { key: KEY }, tooShort, 0), undefined);
  const room = new Uint8Array(10 + line.length * 3 + 160);
  assert.equal(
    sealV2RecordInto(HEADER, fields, { key: KEY }, room, 10)?.hash,
    sealV2Record(HEADER, fields).hash,
  );
});

function reject(line: string, key?: Uint8Array): string {
  const checked = checkV2Line(line, key);
  assert.equal(checked.ok, false);
  return checked.ok ? "" : checked.reason;
}

Deno.test("checkV2Line() classifies each kind of bad line", () => {
  const line = sealV2Record(HEADER, { a: 1 }, { key: KEY }).line.slice(0, -1);
  assert.equal(reject("not json"), "malformed_json");
  assert.equal(reject("[1,2]"), "malformed_json");
  assert.equal(reject('{"a":1,"a":2}'), "malformed_json");
  assert.equal(reject("\ufeff" + line), "malformed_json");
  assert.equal(reject('{"v":3}'), "unknown_version");
  assert.equal(reject('{"x":1}'), "unknown_version");
  assert.equal(reject(line.replace('"seq":0', '"seq":-1')), "malformed_json");
  assert.equal(reject(line.replace('"prev":"0', '"prev":"x')), "malformed_json");
  assert.equal(reject(line.replace('"event":"allocate"', '"event":7')), "malformed_json");
  assert.equal(reject(line.replace(/"hash":"[0-9a-f]+"/, '"hash":"zz"')), "hash_mismatch");
  assert.equal(reject(line.replace('"a":1', '"a":2')), "hash_mismatch");
  assert.equal(reject(line.replace('"a":1', '"a":1.0')), "hash_mismatch");
  assert.equal(reject(line.replace(/"mac":"[0-9a-f]+"/, '"mac":"zz"')), "mac_mismatch");
  assert.equal(reject(line.replace(/,"mac":"[0-9a-f]+"/, ""), KEY), "mac_missing");
  assert.equal(reject(line, new TextEncoder().encode("other")), "mac_mismatch");
});

Deno.test("checkV2Line() reports a re-ordered hash member as not canonical", () => {
  const sealed = sealV2Record(HEADER, { a: 1 });
  const record = JSON.parse(sealed.line) as Record<string, unknown>;
  const moved = JSON.stringify({ hash: record.hash, ...record });
  const checked = checkV2Line(moved, undefined);
  assert.equal(checked.ok, false);
  assert.match(checked.ok ? "" : checked.detail, /canonical/);
});

Deno.test("splitV2Line() returns undefined for lines without the spliced hash", () => {
  assert.equal(splitV2Line("{}"), undefined);
  assert.equal(splitV2Line('{"curr_hash": "' + "0".repeat(64) + '"}'), undefined);
});

Deno.test("sealV2Record() keeps fields apart whose names would collide when joined", () => {
  const joined = sealV2Record(HEADER, { "a\u0000b": 1 });
  const apart = sealV2Record(HEADER, { a: 1, b: 2 });
  assert.match(joined.body, /"a\\u0000b":1/);
  assert.match(apart.body, /"a":1,"b":2/);
  const again = sealV2Record(HEADER, { "a\u0000b": 3 });
  assert.match(again.body, /"a\\u0000b":3/);
});

Deno.test("sealV2Record() seals records whose field sets alternate as the generic serialiser does", () => {
  // More shapes than the writer remembers, cycled twice, with one set of names in two orders.
  const shapes = Array.from({ length: 11 }, (_, i) => {
    const fields: Record<string, unknown> = { tenant_id: "t", nbytes: i };
    for (let k = 0; k < i; k++) fields[`f${k}`] = k % 2 === 0 ? `v${k}` : [k, { b: 1, a: true }];
    return fields;
  });
  shapes.push({ nbytes: 1, tenant_id: "t" });
  for (let round = 0; round < 2; round++) {
    for (const [i, fields] of shapes.entries()) {
      const sealed = sealV2Record({ ...HEADER, seq: i }, fields);
      assert.equal(sealed.body, canonicalizeV2({ ...fields, ...HEADER, seq: i, v: 2 }));
    }
  }
});
