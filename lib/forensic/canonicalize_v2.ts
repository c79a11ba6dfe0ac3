/**
 * RFC 8785 (JCS) canonical JSON for format v2 (DESIGN.md §4). The writer is stricter than JCS
 * requires so that every record round-trips exactly (safe integers only: an integer beyond 2^53
 * would be written as the nearest double, not as given); the verifier accepts every canonical
 * text, whose numbers are IEEE-754 doubles written as ECMAScript writes them (`1e+30`).
 *
 * @see {@link https://www.rfc-editor.org/rfc/rfc8785 | RFC 8785}
 * @module
 */

/**
 * Serialises a JSON value in RFC 8785 canonical form: members sorted by UTF-16 code units, no
 * whitespace, numbers in ECMAScript `Number.prototype.toString` form, strings as
 * `JSON.stringify` escapes them. Stricter than JCS requires, as the writer is, so a record always
 * round-trips: integers must be safe integers, numbers finite, strings well-formed; plain
 * objects and arrays only. Object members whose value is `undefined` are left out, as in JSON.
 *
 * @param value The value to serialise.
 * @returns The canonical text.
 * @throws {TypeError} When the value holds something format v2 cannot carry exactly.
 *
 * @example Usage
 * ```ts
 * import { canonicalizeV2 } from "./canonicalize_v2.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(canonicalizeV2({ b: 1, a: [true, "é"] }), '{"a":[true,"é"],"b":1}');
 * ```
 */
export function canonicalizeV2(value: unknown): string {
  return serialize(value, null, 0, true);
}

/**
 * Serialises a value as `JSON.parse` returns it in RFC 8785 canonical form, with any finite
 * number (an integer beyond 2^53 is the double it denotes, written as ECMAScript writes it): the
 * verifier's rule, which must accept what any RFC 8785 writer wrote.
 *
 * @param value The value to serialise.
 * @returns The canonical text.
 * @throws {TypeError} On a non-finite number, a lone surrogate or a non-JSON value.
 *
 * @example Usage
 * ```ts
 * import { canonicalizeJcs } from "./canonicalize_v2.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(canonicalizeJcs(JSON.parse('{"b":1E30,"a":4.50}')), '{"a":4.5,"b":1e+30}');
 * ```
 */
export function canonicalizeJcs(value: unknown): string {
  return serialize(value, null, 0, false);
}

const MAX_DEPTH = 256;

/**
 * Serialises `value` in canonical form, leaving out the top-level members named in `skipTop`;
 * `exact` refuses integers beyond 2^53 (the writer's rule), otherwise any finite number goes.
 * @throws {TypeError} As {@linkcode canonicalizeV2}.
 */
export function serialize(
  value: unknown,
  skipTop: ReadonlySet<string> | null,
  depth: number,
  exact: boolean,
): string {
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw new TypeError("Cannot serialise a string with a lone surrogate");
      }
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`Cannot serialise a non-finite number: ${value}`);
      }
      if (exact && Number.isInteger(value) && !Number.isSafeInteger(value)) {
        throw new TypeError(`Cannot serialise an integer beyond 2^53 exactly: ${value}`);
      }
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (depth >= MAX_DEPTH) {
        throw new TypeError(`Cannot serialise nesting deeper than ${MAX_DEPTH}`);
      }
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          const item: unknown = value[i];
          if (item === undefined) {
            throw new TypeError(`Cannot serialise undefined at array index ${i}`);
          }
          out += serialize(item, null, depth + 1, exact);
        }
        return out + "]";
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError(
          `Cannot serialise an object of type ${value.constructor?.name ?? "unknown"}`,
        );
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let out = "{";
      let first = true;
      for (const key of keys) {
        if (skipTop !== null && skipTop.has(key)) continue;
        const item = record[key];
        if (item === undefined) continue;
        if (!key.isWellFormed()) {
          throw new TypeError("Cannot serialise a key with a lone surrogate");
        }
        out += (first ? "" : ",") + JSON.stringify(key) + ":" +
          serialize(item, null, depth + 1, exact);
        first = false;
      }
      return out + "}";
    }
    default:
      throw new TypeError(`Cannot serialise a value of type ${typeof value}`);
  }
}

const HASH_AND_MAC = new Set(["hash", "mac"]);

/**
 * The canonical body of a parsed record: its JCS form without `hash` and `mac`, any finite
 * number allowed (the verifier's rule).
 *
 * @param record A parsed record.
 * @returns The bytes `hash` and `mac` are computed over, as text.
 */
export function canonicalBodyV2(record: Record<string, unknown>): string {
  return serialize(record, HASH_AND_MAC, 0, false);
}

/**
 * Keys JSON.stringify emits before all others, in numeric order: array indices, up to 2^32 - 2,
 * so up to ten digits (`"1000000000"` is one). Every ten-digit number is taken for one; a key
 * matched wrongly only costs the slower serialiser.
 */
export const INTEGER_KEY_RE = /^(?:0|[1-9][0-9]{0,9})$/;

/** Throws TypeError for a non-container value format v2 cannot carry exactly. */
export function checkScalar(value: unknown): void {
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw new TypeError("Cannot serialise a string with a lone surrogate");
      }
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`Cannot serialise a non-finite number: ${value}`);
      }
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
        throw new TypeError(`Cannot serialise an integer beyond 2^53 exactly: ${value}`);
      }
      return;
    case "boolean":
    case "undefined":
      return;
    case "object":
      if (value === null) return;
      break;
    default:
      throw new TypeError(`Cannot serialise a value of type ${typeof value}`);
  }
}

/**
 * Validates a nested value and tells whether JSON.stringify would emit it in JCS form: every
 * object's own keys already sorted, none integer-like.
 */
export function stringifyOrder(value: object, depth: number): boolean {
  if (depth >= MAX_DEPTH) throw new TypeError(`Cannot serialise nesting deeper than ${MAX_DEPTH}`);
  let fast = true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item === undefined) throw new TypeError(`Cannot serialise undefined at array index ${i}`);
      if (typeof item === "object" && item !== null) fast = stringifyOrder(item, depth + 1) && fast;
      else checkScalar(item);
    }
    return fast;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(
      `Cannot serialise an object of type ${value.constructor?.name ?? "unknown"}`,
    );
  }
  const record = value as Record<string, unknown>;
  let last: string | undefined;
  for (const key of Object.keys(record)) {
    if (!key.isWellFormed()) throw new TypeError("Cannot serialise a key with a lone surrogate");
    if ((last !== undefined && !(last < key)) || INTEGER_KEY_RE.test(key)) fast = false;
    last = key;
    const item = record[key];
    if (typeof item === "object" && item !== null) fast = stringifyOrder(item, depth + 1) && fast;
    else checkScalar(item);
  }
  return fast;
}
