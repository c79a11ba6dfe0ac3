import assert from "node:assert/strict";
import fc from "fast-check";
import { scanCanonicalBody, scanCanonicalLine } from "../../lib/forensic/_canonical_scan.ts";
import { canonicalizeV2 } from "../../lib/forensic/canonicalize_v2.ts";
import { isCanonicalBodyReference } from "../_reference/canonical_v2.ts";

const SEED = 8785;

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) =>
    !Number.isInteger(d) || Number.isSafeInteger(d)
  ),
  fc.string({
    unit: fc.constantFrom(
      "a",
      "é",
      "\u0000",
      "\u0008",
      "\u001f",
      "\u007f",
      "\u2028",
      "\ud83d\ude00",
      '"',
      "\\",
      "/",
    ),
  }),
  fc.string({ unit: "binary" }),
);
const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    scalar,
    fc.array(tie("v"), { maxLength: 3 }),
    fc.dictionary(
      fc.string({
        unit: fc.constantFrom("a", "b", "1", "10", "2", "\ue000", "\ud83d\ude00", "\\", "\n"),
      }),
      tie("v"),
      { maxKeys: 4 },
    ),
  ),
})).v;
const body = fc.dictionary(fc.string(), value, { maxKeys: 6 }).map((record) => {
  delete record.hash;
  delete record.mac;
  return canonicalizeV2(record);
});

Deno.test("scanCanonicalBody() accepts every canonical body", () => {
  fc.assert(
    fc.property(body, (text) => {
      assert.notEqual(scanCanonicalBody(text), undefined, text);
    }),
    { seed: SEED, numRuns: 3000 },
  );
});

Deno.test("scanCanonicalBody() agrees with the reference on mutated bodies", () => {
  const edit = fc.tuple(
    body,
    fc.nat(),
    fc.constantFrom(
      " ",
      "\\",
      '"',
      "u",
      "0",
      "1",
      "e",
      "E",
      "+",
      "-",
      ".",
      "}",
      ",",
      "A",
      "\u0001",
      "\ud800",
      "\udc00",
    ),
    fc.constantFrom("insert", "replace", "delete"),
  );
  fc.assert(
    fc.property(edit, ([text, at, char, how]) => {
      const i = at % (text.length + 1);
      const mutated = how === "insert"
        ? text.slice(0, i) + char + text.slice(i)
        : how === "replace"
        ? text.slice(0, i) + char + text.slice(i + 1)
        : text.slice(0, i) + text.slice(i + 1);
      assert.equal(
        scanCanonicalBody(mutated) !== undefined,
        isCanonicalBodyReference(mutated),
        JSON.stringify(mutated),
      );
    }),
    { seed: SEED, numRuns: 20000 },
  );
});

Deno.test("scanCanonicalBody() returns the raw text of v, seq, prev, event and ts", () => {
  const members = scanCanonicalBody(
    '{"a":[1,{"seq":9}],"event":"x\\"y","prev":"p","seq":12,"ts":"t","v":2}',
  );
  assert.deepEqual(members, { event: '"x\\"y"', prev: '"p"', seq: "12", ts: '"t"', v: "2" });
});

Deno.test("scanCanonicalBody() rejects non-canonical numbers, escapes, order and hash members", () => {
  for (
    const text of [
      '{"a":1.0}',
      '{"a":1e21}',
      '{"a":-0}',
      '{"a":9007199254740993}',
      '{"a":"\\u001F"}',
      '{"a":"\\u000a"}',
      '{"a":"\\/"}',
      '{"b":1,"a":2}',
      '{"a":1,"a":2}',
      '{"hash":"x"}',
      '{"a":"\ud800"}',
      '{"a":tru}',
      '{"a":1} ',
      "[1]",
      '{"a":[1,]}',
    ]
  ) {
    assert.equal(scanCanonicalBody(text), undefined, text);
  }
  let deep = "1";
  for (let i = 0; i < 300; i++) deep = `[${deep}]`;
  assert.equal(scanCanonicalBody(`{"a":${deep}}`), undefined);
});

Deno.test("scanCanonicalLine() judges a body inside its line as the reference judges the body", () => {
  const edit = fc.tuple(body, fc.nat(), fc.constantFrom('"', "\\", "}", ",", "1", "["));
  fc.assert(
    fc.property(edit, ([text, at, char]) => {
      const i = at % text.length;
      const mutated = text.slice(0, i) + char + text.slice(i + 1);
      if (!mutated.endsWith("}")) return;
      const end = mutated.length - 1;
      const line = mutated.slice(0, end) + ',"hash":"' + "0".repeat(64) + '"}';
      assert.equal(
        scanCanonicalLine(line, end) !== undefined,
        isCanonicalBodyReference(mutated),
        JSON.stringify(line),
      );
    }),
    { seed: SEED, numRuns: 5000 },
  );
});
