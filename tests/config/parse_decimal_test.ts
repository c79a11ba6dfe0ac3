import assert from "node:assert/strict";
import { KvhError } from "../../lib/errors.ts";
import { decimalProblem, parseDecimal } from "../../lib/config/parse_decimal.ts";

Deno.test("parseDecimal() takes decimal notation only and names where the text came from", () => {
  assert.equal(parseDecimal("-2.5", {}, "--n", "flag_invalid"), -2.5);
  for (const text of ["0x10", "1e2", " 5", "5 ", "", ".5", "5.", "Infinity", "+1", "0b1"]) {
    assert.throws(
      () => parseDecimal(text, {}, "KVH_N", "env_invalid"),
      (error: unknown) =>
        error instanceof KvhError && error.code === "env_invalid" &&
        error.message === `Invalid KVH_N: expected a decimal number, got ${JSON.stringify(text)}`,
      JSON.stringify(text),
    );
  }
});

Deno.test("decimalProblem() checks type, finiteness, range and wholeness", () => {
  const count = { integer: true, min: 0, max: 10 };
  assert.equal(decimalProblem(10, count), undefined);
  assert.equal(decimalProblem("1", count), 'must be a number, got the string "1"');
  assert.equal(decimalProblem(null, count), "must be a number, got null");
  assert.equal(decimalProblem(NaN, count), "must be finite, got NaN");
  assert.equal(decimalProblem(-1, count), "must not be negative, got -1");
  assert.equal(decimalProblem(0, { min: 1 }), "must be at least 1, got 0");
  assert.equal(decimalProblem(1.5, count), "must be a whole number, got 1.5");
  assert.equal(decimalProblem(11, count), "must be at most 10, got 11");
});
