/**
 * Format v1: the log lines of the Python tool (llmops-kv-hygiene), reproduced byte for byte.
 * Pure: canonicalise, hash, MAC and seal; no file access. Spec: DESIGN.md §4 "Format v1" and
 * reference/python-tool.md §2.2 (line format) and §2.3 (hash chain and canonical JSON).
 *
 * `curr_hash` = hex SHA-256 of UTF-8(`P` + canonical(R)), where `P` is the previous line's hash
 * (`GENESIS` first in every file), R is the record without `curr_hash` and `hmac`, and
 * canonical(R) is Python's `json.dumps(R, sort_keys=True, ensure_ascii=False,
 * separators=(",", ":"))`. The `hmac` field is HMAC-SHA256 over the same bytes.
 *
 * Decisions where the Python tool's fixtures leave kvh a choice (tests/fixtures/python-tool/INDEX.md):
 *
 * - **Semantic hashing** (`floats/respelled.log` verifies): like the Python verifier, the hash is
 *   computed from the parsed values re-serialised canonically, not from the bytes on disk. A
 *   re-spelled number (`1E-7` for `1e-07`), reordered keys or other whitespace therefore do not
 *   change the hash. This is what makes kvh agree with the Python tool on its own logs; byte
 *   fidelity is format v2's job (its lines are written in canonical form).
 * - **Non-finite numbers** (`floats/nonfinite.log`): bare `NaN`, `Infinity` and `-Infinity` are
 *   not JSON. {@linkcode parseJson} rejects them (the verifier reports `malformed_json`) unless
 *   its `allowNonFinite` compatibility option is set; then they hash as the Python tool does, as
 *   the same bare tokens. A float literal that overflows (`1E400`) becomes `Infinity` like in
 *   Python.
 * - **Lone surrogates** are rejected by the parser; the Python tool can neither write nor hash
 *   them.
 * - **Integers** are printed exactly at any size, `-0` as `0` (Python's `int("-0")`). Python
 *   refuses integers of more than 4300 digits; kvh prints them.
 *
 * @module
 */

import { hasPlainStrings, JsonNumber, JsonObject, type JsonValue } from "./_json.ts";
import { constantTimeEqual, hmacHex, sha256Hex } from "./digest.ts";

/** The `prev_hash` of the first line of every v1 file. */
export const GENESIS_V1 = "GENESIS";

/**
 * Serialises a value as Python's `json.dumps(value, sort_keys=True, ensure_ascii=False,
 * separators=(",", ":"))` would serialise the value `json.loads` makes of it.
 *
 * @example Usage
 * ```ts
 * import { canonicalV1 } from "./format_v1.ts";
 * import { parseJson } from "./_json.ts";
 * import assert from "node:assert/strict";
 *
 * const value = parseJson('{"b": 1E-7, "a": [100.0, -0, "é\\n"]}');
 * assert.equal(canonicalV1(value), '{"a":[100.0,0,"é\\n"],"b":1e-07}');
 * ```
 *
 * @param value A parsed value.
 * @returns The canonical text.
 * @throws {TypeError} When a string holds a lone surrogate (Python cannot encode it).
 */
export function canonicalV1(value: JsonValue): string {
  return canonicalValue(value, value instanceof JsonObject && hasPlainStrings(value));
}

/** What {@linkcode checkV1Record} computed for one record. */
export interface V1RecordCheck {
  /** The record's `curr_hash`, or `undefined` when missing or not a string. */
  currHash: string | undefined;
  /** Hex SHA-256 of the record's own `prev_hash` plus its canonical text. */
  computedHash: string;
  /** The record's `prev_hash`, or `undefined` when missing or not a string (hashed as ""). */
  prevHash: string | undefined;
  /** Whether `hmac` matches; `undefined` when no key was given or the record has no `hmac`. */
  macOk: boolean | undefined;
  /** Whether the record has an `hmac` member, whatever its value (an empty one fails). */
  hasMac: boolean;
}

/**
 * Computes a v1 record's hash and MAC from its own `prev_hash`, so that lines can be hashed
 * independently (and in parallel); the caller compares `prevHash` with the running chain and
 * `currHash` with `computedHash`. When the record's `prev_hash` equals the running chain value
 * this is exactly the Python verifier's computation.
 *
 * @example Usage
 * ```ts
 * import { checkV1Record, GENESIS_V1, sealV1Record } from "./format_v1.ts";
 * import { JsonObject, parseJson } from "./_json.ts";
 * import assert from "node:assert/strict";
 *
 * const key = new TextEncoder().encode("secret");
 * const { line } = sealV1Record({ event_type: "prune" }, GENESIS_V1, { key });
 * const check = checkV1Record(parseJson(line) as JsonObject, key);
 * assert.equal(check.computedHash, check.currHash);
 * assert.equal(check.prevHash, GENESIS_V1);
 * assert.equal(check.macOk, true);
 * ```
 *
 * @param record A parsed log line.
 * @param key The HMAC key; `undefined` or empty means no key (as in the Python tool). Its HMAC
 * pad states are memoised per `Uint8Array` object, so do not change its bytes between calls.
 * @returns The hashes and the MAC verdict.
 * @throws {TypeError} When a string holds a lone surrogate.
 */
export function checkV1Record(record: JsonObject, key?: Uint8Array): V1RecordCheck {
  const prevField = record.get("prev_hash");
  const prevHash = typeof prevField === "string" ? prevField : undefined;
  const currField = record.get("curr_hash");
  const currHash = typeof currField === "string" ? currField : undefined;
  const hasMac = record.has("hmac");
  const canonical = canonicalObject(record.entries, hasPlainStrings(record), true);
  const message = (prevHash ?? "") + canonical;
  const computedHash = sha256Hex(message);
  let macOk: boolean | undefined;
  if (hasMac && key !== undefined && key.length > 0) {
    const macField = record.get("hmac");
    macOk = typeof macField === "string" && constantTimeEqual(macField, hmacHex(key, message));
  }
  return { currHash, computedHash, prevHash, macOk, hasMac };
}

/** What {@linkcode scanV1Line} read from a line in the Python tool's written form. */
export interface V1LineScan {
  /** `prev_hash` + the canonical text: the bytes `curr_hash` and `hmac` are computed over. */
  message: string;
  /** The record's `curr_hash`. */
  currHash: string;
  /** The record's `prev_hash`, or `undefined` when missing or not a string (hashed as ""). */
  prevHash: string | undefined;
  /** The record's `hmac`, when it has one. */
  mac: string | undefined;
  /** The record's `event_type`, when it has one. */
  eventType: string | undefined;
}

/**
 * The v1 fast path: reads a line written the way the Python tool writes it
 * (`json.dumps(record, ensure_ascii=False)`: `", "` and `": "` separators, no escapes, no
 * nested objects) and builds its hash message from slices of the line, without parsing it into
 * values and re-serialising them. Numbers are respelled as {@linkcode canonicalV1} does, keys
 * sorted by code point. Anything else (escapes, other whitespace, nested objects, NaN,
 * duplicate keys, `v`, rotate and prune records) gives `undefined`, and the caller takes the
 * full path of {@linkcode checkV1Record}, which gives the same hash for every line this reads.
 *
 * @example Usage
 * ```ts
 * import { GENESIS_V1, scanV1Line, sealV1Record } from "./format_v1.ts";
 * import { sha256Hex } from "./digest.ts";
 * import assert from "node:assert/strict";
 *
 * const { line, currHash } = sealV1Record({ event_type: "free", shape: [2, 8] }, GENESIS_V1);
 * const scan = scanV1Line(line)!;
 * assert.equal(scan.currHash, currHash);
 * assert.equal(sha256Hex(scan.message), currHash);
 * assert.equal(scanV1Line(line.replace(", ", ",")), undefined);
 * ```
 *
 * @param line The line without its `\n`.
 * @returns The record's hash message and chain fields, or `undefined`.
 */
export function scanV1Line(line: string): V1LineScan | undefined {
  if (line.charCodeAt(0) !== 0x7b || !line.isWellFormed()) return undefined;
  const entries: [string, string][] = [];
  let currHash: string | undefined;
  let prevHash: string | undefined;
  let mac: string | undefined;
  let eventType: string | undefined;
  let pos = 1;
  while (true) {
    PLAIN_STRING.lastIndex = pos;
    if (!PLAIN_STRING.test(line)) return undefined;
    const key = line.slice(pos + 1, PLAIN_STRING.lastIndex - 1);
    pos = PLAIN_STRING.lastIndex;
    if (line.charCodeAt(pos) !== 0x3a || line.charCodeAt(pos + 1) !== 0x20) return undefined;
    const piece = scanValue(line, pos + 2, 0);
    if (piece === undefined) return undefined;
    pos = valueEnd;
    // Only the members the chain check reads are unquoted.
    switch (key) {
      case "curr_hash":
        if ((currHash = stringContent(piece)) === undefined) return undefined;
        break;
      case "hmac":
        if ((mac = stringContent(piece)) === undefined) return undefined;
        break;
      case "prev_hash":
        prevHash = stringContent(piece);
        break;
      case "event_type":
        eventType = stringContent(piece);
        if (eventType === undefined || eventType === "rotate" || eventType === "prune") {
          return undefined;
        }
        break;
      case "v":
        return undefined;
    }
    entries.push([key, piece]);
    const next = line.charCodeAt(pos);
    if (next === 0x7d && pos === line.length - 1) break;
    if (next !== 0x2c || line.charCodeAt(pos + 1) !== 0x20) return undefined;
    pos += 2;
  }
  if (currHash === undefined) return undefined;
  const order = sortedOrder(entries, false);
  let canonical = "{";
  let previous: string | undefined;
  for (let i = 0; i < order.length; i++) {
    const [key, piece] = entries[order[i]!]!;
    // Duplicate keys are malformed_json, which only the full path reports.
    if (key === previous) return undefined;
    previous = key;
    if (key === "curr_hash" || key === "hmac") continue;
    canonical += (canonical.length > 1 ? ',"' : '"') + key + '":' + piece;
  }
  return { message: (prevHash ?? "") + canonical + "}", currHash, prevHash, mac, eventType };
}

/** A string the Python tool writes as it is: no quote, backslash or control character. */
// deno-lint-ignore no-control-regex -- controls are exactly what needs escaping
const PLAIN_STRING = /"[^"\\\u0000-\u001f]*"/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const MAX_ARRAY_DEPTH = 64;
let valueEnd = 0;

/**
 * The canonical text of the value at `pos` (ending at `valueEnd`), or `undefined` when it is not
 * in the form scanV1Line reads. The caller checks what follows, so `01` or `1.` fail there.
 */
function scanValue(line: string, pos: number, depth: number): string | undefined {
  const c = line.charCodeAt(pos);
  if (c === 0x22) {
    PLAIN_STRING.lastIndex = pos;
    if (!PLAIN_STRING.test(line)) return undefined;
    valueEnd = PLAIN_STRING.lastIndex;
    return line.slice(pos, valueEnd);
  }
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
    NUMBER.lastIndex = pos;
    if (!NUMBER.test(line)) return undefined;
    valueEnd = NUMBER.lastIndex;
    return canonicalNumber(line.slice(pos, valueEnd));
  }
  if (c === 0x5b && depth < MAX_ARRAY_DEPTH) {
    if (line.charCodeAt(pos + 1) === 0x5d) {
      valueEnd = pos + 2;
      return "[]";
    }
    let out = "[";
    pos++;
    while (true) {
      const piece = scanValue(line, pos, depth + 1);
      if (piece === undefined) return undefined;
      out += piece;
      pos = valueEnd;
      const next = line.charCodeAt(pos);
      if (next === 0x5d) {
        valueEnd = pos + 1;
        return out + "]";
      }
      if (next !== 0x2c || line.charCodeAt(pos + 1) !== 0x20) return undefined;
      out += ",";
      pos += 2;
    }
  }
  for (const word of WORDS) {
    if (line.startsWith(word, pos)) {
      valueEnd = pos + word.length;
      return word;
    }
  }
  return undefined;
}

const WORDS = ["true", "false", "null"];

function stringContent(piece: string): string | undefined {
  return piece.charCodeAt(0) === 0x22 ? piece.slice(1, -1) : undefined;
}

/** Options of {@linkcode sealV1Record}. */
export interface SealV1Options {
  /**
   * HMAC key; when set (and not empty) the line gets an `hmac` member.
   *
   * @default {undefined}
   */
  key?: Uint8Array;
  /**
   * Time written as `ts` (float Unix seconds) when `fields` has no `ts`.
   *
   * @default {new Date()}
   */
  now?: Date;
}

/** A sealed v1 line and its hash. */
export interface SealedV1Line {
  /** The complete line, without a line terminator. */
  line: string;
  /** The line's `curr_hash`, the next line's `prev_hash`. */
  currHash: string;
}

const RESERVED_FIELDS = ["prev_hash", "curr_hash", "hmac"];

/**
 * Builds a complete v1 line, as the Python tool's `append` writes it, chained onto `prevHash`:
 * `json.dumps(record, ensure_ascii=False)` with separators `", "` and `": "`, members in this
 * order: `fields` in their order, then `schema` (1), `ts` and `trace_id` (a random UUIDv4) where
 * `fields` lacks them, then `prev_hash`, `curr_hash` and `hmac` (with a key).
 *
 * Field values: `null`, booleans, strings, safe integers (written as Python ints), other finite
 * numbers (written as Python floats), bigints (ints), arrays, plain objects, and
 * {@linkcode JsonNumber} / {@linkcode JsonObject} values. Plain objects list integer-like keys
 * first (JavaScript property order); pass a `JsonObject` to control the order, and a
 * `JsonNumber` such as `new JsonNumber("2.0")` for an integral float.
 *
 * @param fields The record's own members.
 * @param prevHash `GENESIS` for the first line of a file, else the previous line's `curr_hash`.
 * @param options Key and clock.
 * @returns The line and its hash.
 * @throws {TypeError} When `fields` has `prev_hash`, `curr_hash` or `hmac` (the Python tool
 * would write a line that never verifies), or a value JSON cannot hold: non-finite numbers,
 * lone surrogates, `undefined`, functions, class instances, cycles.
 *
 * @example Usage
 * ```ts
 * import { sealV1Record } from "./format_v1.ts";
 * import assert from "node:assert/strict";
 *
 * const lastHash = "0".repeat(64);
 * const { line, currHash } = sealV1Record({ event_type: "prune", removed: 2 }, lastHash, {
 *   now: new Date(Date.UTC(2026, 0, 1)),
 * });
 * assert.ok(line.startsWith('{"event_type": "prune", "removed": 2, "schema": 1, "ts": 1767225600.0'));
 * assert.match(currHash, /^[0-9a-f]{64}$/);
 * ```
 */
export function sealV1Record(
  fields: Record<string, unknown>,
  prevHash: string,
  options: SealV1Options = {},
): SealedV1Line {
  const { key, now = new Date() } = options;
  const entries: [string, JsonValue][] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (RESERVED_FIELDS.includes(name)) {
      throw new TypeError(`Cannot seal v1 record: field "${name}" is set by the log itself`);
    }
    entries.push([name, toJsonValue(value, name, 0)]);
  }
  const given = new Set(Object.keys(fields));
  if (!given.has("schema")) entries.push(["schema", new JsonNumber("1")]);
  if (!given.has("ts")) {
    entries.push(["ts", new JsonNumber(pythonFloatRepr(now.getTime() / 1000))]);
  }
  if (!given.has("trace_id")) entries.push(["trace_id", crypto.randomUUID()]);
  entries.push(["prev_hash", prevHash]);
  const message = prevHash + canonicalObject(entries, false, false);
  const currHash = sha256Hex(message);
  entries.push(["curr_hash", currHash]);
  if (key !== undefined && key.length > 0) entries.push(["hmac", hmacHex(key, message)]);
  return { line: lineObject(entries), currHash };
}

/**
 * Formats a double as Python's `repr(float)`: shortest round-trip digits, positional notation
 * iff the decimal exponent is in [-4, 16) (integral values keep `.0`), otherwise `d.ddde±XX`
 * with at least two exponent digits; `nan`/`inf` as the JSON tokens `NaN`/`Infinity`.
 *
 * @example Usage
 * ```ts
 * import { pythonFloatRepr } from "./format_v1.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(pythonFloatRepr(1e-7), "1e-07");
 * assert.equal(pythonFloatRepr(100), "100.0");
 * assert.equal(pythonFloatRepr(1e16), "1e+16");
 * ```
 *
 * @param x The value.
 * @returns The Python spelling.
 */
export function pythonFloatRepr(x: number): string {
  if (x !== x) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const magnitude = x < 0 ? -x : x;
  if (magnitude >= 1e-4 && magnitude < 1e16) {
    // JavaScript prints this range positionally with the same shortest digits (its own
    // positional range is [1e-7, 1e21)); only the `.0` of integral values differs.
    const text = String(x);
    return text.includes(".") ? text : text + ".0";
  }
  // toExponential() without an argument gives the shortest round-trip digits.
  const text = x.toExponential();
  const e = text.indexOf("e");
  const sign = text[e + 1]!;
  const digits = text.slice(e + 2);
  return `${text.slice(0, e)}e${sign}${digits.length === 1 ? "0" + digits : digits}`;
}

function canonicalNumber(raw: string): string {
  // Integers (and the non-finite tokens, which contain none of '.', 'e', 'E') print as written;
  // Python's int("-0") is 0.
  for (let i = raw.length - 1; i >= 0; i--) {
    const c = raw.charCodeAt(i);
    if (c === 0x2e || c === 0x65 || c === 0x45) return pythonFloatRepr(Number(raw));
  }
  return raw === "-0" ? "0" : raw;
}

function quote(text: string): string {
  // JSON.stringify escapes exactly what Python's ensure_ascii=False does (", \, C0 controls as
  // \b \f \n \r \t or lowercase \u00xx) except lone surrogates, which Python cannot encode.
  if (!text.isWellFormed()) {
    throw new TypeError("Cannot serialise v1 record: a string holds a lone surrogate");
  }
  return JSON.stringify(text);
}

// `plain`: no string in the value needs escaping (see hasPlainStrings), so strings are written
// between quotes as they are; this skips two native calls per string on the verify hot path.
function canonicalValue(value: JsonValue, plain: boolean): string {
  if (typeof value === "string") return plain ? '"' + value + '"' : quote(value);
  if (value instanceof JsonNumber) return canonicalNumber(value.raw);
  if (value instanceof JsonObject) return canonicalObject(value.entries, plain, false);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    let out = "[" + canonicalValue(value[0]!, plain);
    for (let i = 1; i < value.length; i++) out += "," + canonicalValue(value[i]!, plain);
    return out + "]";
  }
  return value === null ? "null" : value ? "true" : "false";
}

function canonicalObject(
  entries: ReadonlyArray<readonly [string, JsonValue]>,
  plain: boolean,
  skipSeal: boolean,
): string {
  const order = sortedOrder(entries, skipSeal);
  if (order.length === 0) return "{}";
  let out = "{";
  for (let i = 0; i < order.length; i++) {
    const [name, value] = entries[order[i]!]!;
    if (i > 0) out += ",";
    out += (plain ? '"' + name + '":' : quote(name) + ":") + canonicalValue(value, plain);
  }
  return out + "}";
}

// Sorting ~20 keys with a JavaScript comparator costs more than the rest of canonicalisation,
// and a log repeats a handful of key sequences (one per event type), so the sorted order is
// memoised per key sequence. Lookup: a cheap hash of the sequence, then an exact comparison.
interface Shape {
  keys: string[];
  skipSeal: boolean;
  order: number[];
}
const SHAPE_MIN_KEYS = 6;
const SHAPE_CACHE_LIMIT = 4096;
const shapes = new Map<number, Shape[]>();
let shapeCount = 0;

function sortedOrder(
  entries: ReadonlyArray<readonly [string, JsonValue]>,
  skipSeal: boolean,
): number[] {
  const n = entries.length;
  if (n < SHAPE_MIN_KEYS) return sortOrder(entries, skipSeal);
  let hash = n;
  for (let i = 0; i < n; i++) {
    const key = entries[i]![0];
    hash = (hash * 31 + key.length * 7 + key.charCodeAt(0) + key.charCodeAt(key.length - 1)) | 0;
  }
  const bucket = shapes.get(hash);
  if (bucket !== undefined) {
    search: for (const shape of bucket) {
      if (shape.skipSeal !== skipSeal || shape.keys.length !== n) continue;
      for (let i = 0; i < n; i++) if (shape.keys[i] !== entries[i]![0]) continue search;
      return shape.order;
    }
  }
  const order = sortOrder(entries, skipSeal);
  if (shapeCount >= SHAPE_CACHE_LIMIT) {
    shapes.clear();
    shapeCount = 0;
  }
  const shape = { keys: entries.map((entry) => entry[0]), skipSeal, order };
  if (bucket !== undefined && shapes.has(hash)) bucket.push(shape);
  else shapes.set(hash, [shape]);
  shapeCount++;
  return order;
}

function sortOrder(
  entries: ReadonlyArray<readonly [string, JsonValue]>,
  skipSeal: boolean,
): number[] {
  const order: number[] = [];
  for (let i = 0; i < entries.length; i++) {
    const key = entries[i]![0];
    if (!skipSeal || (key !== "curr_hash" && key !== "hmac")) order.push(i);
  }
  return order.sort((a, b) => compareCodePoints(entries[a]![0], entries[b]![0]));
}

// The on-disk line: insertion order, Python's default separators. Not on a hot path.
function lineValue(value: JsonValue): string {
  if (typeof value === "string") return quote(value);
  if (value instanceof JsonNumber) return canonicalNumber(value.raw);
  if (value instanceof JsonObject) return lineObject(value.entries);
  if (Array.isArray(value)) return "[" + value.map(lineValue).join(", ") + "]";
  return value === null ? "null" : value ? "true" : "false";
}

function lineObject(entries: ReadonlyArray<readonly [string, JsonValue]>): string {
  return "{" + entries.map(([name, value]) => quote(name) + ": " + lineValue(value)).join(", ") +
    "}";
}

/**
 * Python compares strings by code point; JavaScript's `<` compares UTF-16 code units, which
 * puts astral characters (surrogates D800–DFFF) before U+E000–U+FFFF. At the first differing
 * unit, moving surrogates above that range restores code point order.
 */
function compareCodePoints(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

function toJsonValue(value: unknown, path: string, depth: number): JsonValue {
  if (depth > 512) {
    throw new TypeError(`Cannot seal v1 record: field "${path}" nests too deeply or is cyclic`);
  }
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw new TypeError(`Cannot seal v1 record: field "${path}" holds a lone surrogate`);
      }
      return value;
    case "boolean":
      return value;
    case "bigint":
      return new JsonNumber(value.toString());
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`Cannot seal v1 record: field "${path}" is not a finite number`);
      }
      return new JsonNumber(Number.isSafeInteger(value) ? String(value) : pythonFloatRepr(value));
    case "object": {
      if (value === null || value instanceof JsonNumber || value instanceof JsonObject) {
        return value;
      }
      if (Array.isArray(value)) {
        return value.map((item, i) => toJsonValue(item, `${path}[${i}]`, depth + 1));
      }
      const proto = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null) {
        return new JsonObject(
          Object.entries(value).map((
            [name, item],
          ) => [name, toJsonValue(item, `${path}.${name}`, depth + 1)]),
        );
      }
      break;
    }
  }
  throw new TypeError(`Cannot seal v1 record: field "${path}" is not a JSON value`);
}
