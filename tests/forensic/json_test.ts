import assert from "node:assert/strict";
import fc from "fast-check";
import {
  hasPlainStrings,
  JsonNumber,
  JsonObject,
  JsonParseError,
  type JsonValue,
  MAX_JSON_DEPTH,
  parseJson,
} from "../../lib/forensic/_json.ts";
import { referenceParse } from "../_reference/json.ts";

const SEED = 42;

/** Converts a parsed value into what JSON.parse returns, for comparison. */
function toPlain(value: JsonValue): unknown {
  if (value instanceof JsonNumber) return Number(value.raw);
  if (value instanceof JsonObject) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of value.entries) {
      Object.defineProperty(out, key, { value: toPlain(item), enumerable: true });
    }
    return out;
  }
  if (Array.isArray(value)) return value.map(toPlain);
  return value;
}

function parseError(text: string, options = {}): JsonParseError {
  try {
    parseJson(text, options);
  } catch (error) {
    assert.ok(error instanceof JsonParseError, `expected JsonParseError, got ${error}`);
    return error;
  }
  assert.fail(`parseJson accepted ${JSON.stringify(text)}`);
}

Deno.test("parseJson() keeps number literals exactly as written", () => {
  const value = parseJson("[18446744073709551616, 1e-07, 1E-7, -0, -0.0, 100.0, 1.0e2, 0]");
  assert.ok(Array.isArray(value));
  assert.deepEqual(
    value.map((n) => (n as JsonNumber).raw),
    ["18446744073709551616", "1e-07", "1E-7", "-0", "-0.0", "100.0", "1.0e2", "0"],
  );
});

Deno.test("parseJson() keeps object members in file order, __proto__ included", () => {
  const value = parseJson('{"b": 1, "a": {"__proto__": null, "": true}, "1": "x"}');
  assert.ok(value instanceof JsonObject);
  assert.deepEqual(value.entries.map(([key]) => key), ["b", "a", "1"]);
  const inner = value.get("a");
  assert.ok(inner instanceof JsonObject);
  assert.deepEqual(inner.entries, [["__proto__", null], ["", true]]);
  assert.equal(inner.has("__proto__"), true);
  assert.equal(inner.has("constructor"), false);
  assert.equal(value.get("1"), "x");
  assert.equal(value.get("missing"), undefined);
});

Deno.test("parseJson() decodes every escape and surrogate pair", () => {
  const text = String.raw`"q\" b\\ s\/ \b\f\n\r\t \u0000\u001F \u00e9\u20AC \ud83d\ude00 raw😀"`;
  assert.equal(parseJson(text), 'q" b\\ s/ \b\f\n\r\t \u0000\u001f é€ 😀 raw😀');
});

Deno.test("parseJson() accepts surrounding JSON whitespace only", () => {
  assert.equal(parseJson(" \t\r\n true \n"), true);
  assert.equal(parseError("\u00a0true").offset, 0);
  assert.equal(parseError("true\u2028").offset, 4);
});

Deno.test("parseJson() agrees with JSON.parse on random JSON", () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.boolean(), (value, pretty) => {
      const text = JSON.stringify(value, null, pretty ? 2 : undefined);
      assert.deepEqual(toPlain(parseJson(text)), JSON.parse(text));
    }),
    { seed: SEED, numRuns: 300 },
  );
});

Deno.test("parseJson() rejects a duplicate key at any depth and names it", () => {
  const top = parseError('{"tenant_id": "mallory", "tenant_id": "globex"}');
  assert.equal(top.duplicateKey, "tenant_id");
  assert.equal(top.offset, 25);
  assert.match(top.message, /^Duplicate key "tenant_id" at offset 25$/);
  const nested = parseError('{"a": [{"x": 1, "y": 2, "x": 3}]}');
  assert.equal(nested.duplicateKey, "x");
  const escaped = parseError('{"ab": 1, "a\\u0062": 2}');
  assert.equal(escaped.duplicateKey, "ab");
});

Deno.test("parseJson() rejects a duplicate key in an object with many members", () => {
  const members = Array.from({ length: 40 }, (_, i) => `"k${i}": ${i}`);
  const wide = JSON.parse(`{${members.join(",")}}`);
  assert.equal(Object.keys(wide).length, 40);
  const value = parseJson(`{${members.join(",")}}`);
  assert.ok(value instanceof JsonObject);
  assert.equal((value.get("k39") as JsonNumber).raw, "39");
  assert.equal(value.has("k0"), true);
  assert.equal(value.has("k40"), false);
  assert.equal(value.get("k40"), undefined);
  for (const at of [3, 20, 33, 39]) {
    const text = `{${[...members, `"k${at}": 0`].join(",")}}`;
    assert.equal(parseError(text).duplicateKey, `k${at}`);
  }
});

Deno.test("parseJson() rejects malformed text with the offset where it went wrong", () => {
  const cases: [string, number][] = [
    ["", 0],
    ["   ", 3],
    ["{", 1],
    ['{"a" 1}', 5],
    ['{"a": 1,}', 8],
    ["[1,]", 3],
    ["[1 2]", 3],
    ["{1: 2}", 1],
    ["01", 1],
    ["1.", 2],
    [".5", 0],
    ["+1", 0],
    ["-", 1],
    ["1e", 2],
    ["1e+", 3],
    ["tru", 0],
    ["nul", 0],
    ['"abc', 0],
    ['"a\\x"', 2],
    ['"\\u12G4"', 1],
    ['{"a": 1} x', 9],
    ["true false", 5],
  ];
  for (const [text, offset] of cases) {
    const error = parseError(text);
    assert.equal(error.offset, offset, `offset for ${JSON.stringify(text)}: ${error.message}`);
    assert.match(error.message, new RegExp(`^Invalid JSON at offset ${offset}: `));
  }
});

Deno.test("parseJson() rejects a leading byte order mark", () => {
  const error = parseError('\ufeff{"a": 1}');
  assert.equal(error.offset, 0);
  assert.match(error.message, /byte order mark/);
});

Deno.test("parseJson() rejects raw control characters inside strings", () => {
  for (const c of ["\u0000", "\n", "\t", "\u001f"]) {
    assert.match(parseError(`"a${c}b"`).message, /raw control character U\+00/);
  }
  assert.equal(parseJson('"\u007f\u0085\u2028"'), "\u007f\u0085\u2028");
});

Deno.test("parseJson() rejects lone surrogates, escaped or raw", () => {
  for (const text of ['"\\ud800"', '"\\udc00"', '"\\ud800x"', '"\\ud800\\u0041"', '"\\ud800\\n"']) {
    assert.match(parseError(text).message, /lone surrogate escape/, text);
  }
  assert.equal(parseError('"ab\ud800"').offset, 3);
  assert.equal(parseError('"\udc00\ud83d\ude00"').offset, 1);
  assert.equal(parseJson('"\ud83d\ude00"'), "😀");
});

Deno.test("parseJson() rejects NaN and Infinity unless allowNonFinite is set", () => {
  for (const token of ["NaN", "Infinity", "-Infinity"]) {
    const error = parseError(`[${token}]`);
    assert.equal(error.offset, 1);
    assert.match(error.message, /compatibility mode/);
    const value = parseJson(`[${token}]`, { allowNonFinite: true });
    assert.ok(Array.isArray(value) && value[0] instanceof JsonNumber);
    assert.equal(value[0].raw, token);
  }
  assert.equal(parseError("-NaN", { allowNonFinite: true }).offset, 1);
  assert.equal(parseError("Inf", { allowNonFinite: true }).offset, 0);
  assert.equal(parseError("-Inf", { allowNonFinite: true }).offset, 1);
});

Deno.test("parseJson() bounds nesting depth", () => {
  const deepest = "[".repeat(MAX_JSON_DEPTH) + "]".repeat(MAX_JSON_DEPTH);
  assert.ok(Array.isArray(parseJson(deepest)));
  const tooDeep = "[".repeat(MAX_JSON_DEPTH + 1) + "]".repeat(MAX_JSON_DEPTH + 1);
  assert.match(parseError(tooDeep).message, /nesting deeper than 512 levels/);
  const objects = '{"a":'.repeat(MAX_JSON_DEPTH + 1) + "1" + "}".repeat(MAX_JSON_DEPTH + 1);
  assert.match(parseError(objects).message, /nesting deeper/);
  assert.match(parseError("[".repeat(100_000)).message, /nesting deeper/);
});

Deno.test("parseJson() is usable again after a failure", () => {
  parseError('{"a": 1, "a": 2}');
  assert.equal(parseJson('"ok"'), "ok");
  assert.throws(() => new JsonNumber("1x"), TypeError);
});

Deno.test("JsonNumber() accepts only number literals", () => {
  for (const raw of ["0", "-0.0", "1e-07", "1E+400", "NaN", "Infinity", "-Infinity"]) {
    assert.equal(new JsonNumber(raw).raw, raw);
    assert.equal(String(new JsonNumber(raw)), raw);
  }
  for (const raw of ["", "01", "1.", "+1", "0x10", " 1", "-NaN", "inf"]) {
    assert.throws(() => new JsonNumber(raw), TypeError, raw);
  }
});

Deno.test("JsonObject() rejects duplicate keys", () => {
  assert.throws(
    () => new JsonObject([["a", 1 as unknown as JsonValue], ["a", null]]),
    { name: "TypeError", message: 'Cannot create JsonObject: duplicate key "a"' },
  );
  const object = new JsonObject([["a", null], ["b", true]]);
  assert.equal(object.get("b"), true);
});

Deno.test("JsonParseError shortens very long duplicate keys in its message", () => {
  const key = "k".repeat(500);
  const error = parseError(`{"${key}": 1, "${key}": 2}`);
  assert.equal(error.duplicateKey, key);
  assert.ok(error.message.length < 120, error.message);
  assert.ok(error instanceof SyntaxError);
  assert.equal(error.name, "JsonParseError");
});

Deno.test("hasPlainStrings() is true only for parsed text without backslashes or controls", () => {
  const plain = parseJson('{"a": ["é 😀", {"b": "c"}]}') as JsonObject;
  assert.equal(hasPlainStrings(plain), true);
  const nested = ((plain.get("a") as JsonValue[])[1]) as JsonObject;
  assert.equal(hasPlainStrings(nested), true);
  assert.equal(hasPlainStrings(parseJson('{"a": "\\u0041"}') as JsonObject), false);
  assert.equal(hasPlainStrings(parseJson('{"a":\t"b"}') as JsonObject), false);
  assert.equal(hasPlainStrings(new JsonObject([["a", "b"]])), false);
});

/** Characters that matter to a JSON parser, for mutating and building texts. */
const JSON_CHARS = [...'{}[],:"\\ntrufalse0123456789-+.eEu \t\n\r/b'].concat([
  "\u0000",
  "\u001f",
  "\ud800",
  "\udc00",
  "\ufeff",
  "é",
  "😀",
  "\\ud800",
  "\\udc00",
  "\\u0041",
  '"a":1,"a":2',
  '"a":',
]);

/** A document, then a few edits: delete, insert, replace, duplicate a run, truncate. */
const mutated = fc.tuple(
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc.array(
    fc.tuple(fc.nat(), fc.nat(), fc.constantFrom(...JSON_CHARS), fc.integer({ min: 0, max: 4 })),
    { minLength: 1, maxLength: 4 },
  ),
).map(([text, edits]) => {
  for (const [a, b, insert, kind] of edits) {
    const at = text.length === 0 ? 0 : a % text.length;
    if (kind === 0) text = text.slice(0, at) + text.slice(at + 1);
    else if (kind === 1) text = text.slice(0, at) + insert + text.slice(at);
    else if (kind === 2) text = text.slice(0, at) + insert + text.slice(at + 1);
    else if (kind === 3) text = text.slice(0, at) + text.slice(at, at + (b % 12)) + text.slice(at);
    else text = text.slice(0, at);
  }
  return text;
});

/** An object with one key repeated somewhere, at any depth. */
const duplicated = fc.tuple(
  fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 }),
  fc.nat(),
  fc.boolean(),
).map(([object, pick, nest]) => {
  const keys = Object.keys(object);
  const key = JSON.stringify(keys[pick % keys.length]);
  const text = JSON.stringify(object);
  const doubled = `{${key}:0,${text.slice(1)}`;
  return nest ? `[{"x":${doubled}}]` : doubled;
});

Deno.test("parseJson() agrees with JSON.parse plus a separate duplicate-key check on mutated and invalid text", () => {
  const text = fc.oneof(
    mutated,
    duplicated,
    fc.string({ unit: fc.constantFrom(...JSON_CHARS), maxLength: 24 }),
    fc.jsonValue().map((value) => JSON.stringify(value, null, 1)),
  );
  fc.assert(
    fc.property(text, (input) => {
      const expected = referenceParse(input, MAX_JSON_DEPTH);
      let actual: { ok: true; value: unknown } | { ok: false };
      try {
        actual = { ok: true, value: toPlain(parseJson(input)) };
      } catch (error) {
        // Whatever the input, a rejection is a JsonParseError, never a crash of another kind.
        assert.ok(error instanceof JsonParseError, `${JSON.stringify(input)}: ${error}`);
        actual = { ok: false };
      }
      assert.deepEqual(actual, expected, JSON.stringify(input));
    }),
    { seed: SEED, numRuns: 3000 },
  );
});
