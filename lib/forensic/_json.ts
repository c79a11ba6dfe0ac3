/**
 * Strict, lossless JSON parser for one forensic log line (RFC 8259).
 *
 * `JSON.parse` cannot be used on the verify path: it silently keeps the last of two duplicate
 * keys (the parser-differential attack of python-tool.md §2.3: a copy inserted before the genuine
 * key is invisible to a last-wins parser) and
 * rounds integers beyond 2^53 and float spellings before the Python tool's canonical form can be
 * rebuilt from them. This parser keeps every number literal as written ({@linkcode JsonNumber}),
 * keeps object members in file order ({@linkcode JsonObject}) and rejects anything RFC 8259 does
 * not allow, plus:
 *
 * - duplicate keys in any object at any depth (`duplicateKey` is set on the error);
 * - lone surrogates, escaped (`"\ud800"`) or raw: RFC 7493 (I-JSON) forbids them, RFC 8785 (JCS,
 *   format v2) requires I-JSON, and the Python tool cannot write them (its `append` raises
 *   `UnicodeEncodeError`), so no genuine log of either format contains one. Python's `json.loads`
 *   accepts them, but its verifier then crashes while hashing; rejecting them here turns that
 *   crash into a `malformed_json` verdict;
 * - a leading byte order mark (Python's `json.loads` rejects it too);
 * - nesting deeper than {@linkcode MAX_JSON_DEPTH} containers, which bounds the stack.
 *
 * `NaN`, `Infinity` and `-Infinity` tokens (written by the Python tool for non-finite floats) are
 * accepted only with {@linkcode ParseJsonOptions.allowNonFinite}; they become a `JsonNumber` whose
 * `raw` is the token.
 *
 * This runs once per line on the verify hot path, so a string is found with the native
 * `indexOf` and sliced straight out of the input; only lines holding a backslash or a control
 * character have their strings scanned code unit by code unit.
 *
 * @module
 */

/** A parsed JSON value; numbers keep their literal spelling. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

/** Deepest nesting of arrays and objects that {@linkcode parseJson} accepts. */
export const MAX_JSON_DEPTH = 512;

const NUMBER_GRAMMAR = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NaN|-?Infinity)$/;

// Set while the parser builds values it has already validated, so the public constructors can
// check their input without slowing the hot path down.
let trusted = false;
// Reads JsonObject's private #plain flag for hasPlainStrings; assigned in its static block.
let readPlain: (object: JsonObject) => boolean;

/** A JSON number, kept exactly as written so no digit is lost before re-serialisation. */
export class JsonNumber {
  /** The literal exactly as written, e.g. `1e-07`, `-0.0` or `18446744073709551616`. */
  readonly raw: string;

  /**
   * Wraps a number literal.
   *
   * @param raw An RFC 8259 number literal, or `NaN`, `Infinity` or `-Infinity`.
   * @throws {TypeError} When `raw` is not such a literal.
   */
  constructor(raw: string) {
    if (!trusted && !NUMBER_GRAMMAR.test(raw)) {
      throw new TypeError(`Cannot create JsonNumber: ${JSON.stringify(raw)} is not a number`);
    }
    this.raw = raw;
  }

  /**
   * Returns the literal as written.
   *
   * @returns The literal.
   */
  toString(): string {
    return this.raw;
  }
}

// Up to this many members, a linear scan beats building a Map or Set (records have ~15-25
// members, and the verifier reads the last few).
const LINEAR_LIMIT = 32;

/** A JSON object whose members keep their file order; keys are unique. */
export class JsonObject {
  /** Members in file order. */
  readonly entries: ReadonlyArray<readonly [string, JsonValue]>;
  #index: Map<string, JsonValue> | undefined;
  #plain: boolean;

  static {
    readPlain = (object) => object.#plain;
  }

  /**
   * Wraps members.
   *
   * @param entries Members in order; keys must be unique.
   * @throws {TypeError} When two members share a key.
   */
  constructor(entries: ReadonlyArray<readonly [string, JsonValue]>) {
    if (!trusted) {
      const seen = new Set<string>();
      for (const [key] of entries) {
        if (seen.has(key)) {
          throw new TypeError(`Cannot create JsonObject: duplicate key ${quoteForMessage(key)}`);
        }
        seen.add(key);
      }
    }
    this.entries = entries;
    this.#plain = trusted && plainStrings;
  }

  /**
   * Returns the value of a member.
   *
   * @param key Member name.
   * @returns The value, or `undefined` when there is no such member.
   */
  get(key: string): JsonValue | undefined {
    const entries = this.entries;
    if (entries.length <= LINEAR_LIMIT) {
      // Backwards: the fields the verifier asks for (curr_hash, hmac, prev_hash) come last.
      for (let i = entries.length - 1; i >= 0; i--) {
        const entry = entries[i]!;
        if (entry[0] === key) return entry[1];
      }
      return undefined;
    }
    return this.#map().get(key);
  }

  /**
   * Tells whether a member exists.
   *
   * @param key Member name.
   * @returns `true` when the object has a member named `key`.
   */
  has(key: string): boolean {
    const entries = this.entries;
    if (entries.length <= LINEAR_LIMIT) {
      for (let i = entries.length - 1; i >= 0; i--) {
        if (entries[i]![0] === key) return true;
      }
      return false;
    }
    return this.#map().has(key);
  }

  #map(): Map<string, JsonValue> {
    this.#index ??= new Map(this.entries);
    return this.#index;
  }
}

/**
 * Tells whether no string in `object` (keys included, at any depth) needs escaping in JSON
 * output: true only for objects {@linkcode parseJson} made from a text without any backslash or
 * control character, whose strings were therefore sliced verbatim from the text (a `"` would
 * have ended them) and are well-formed. Lets the v1 canonicaliser skip escaping. The parser's
 * output must not be mutated for this to hold.
 *
 * @param object A parsed object.
 * @returns `true` when every string can be written between quotes as it is.
 */
export function hasPlainStrings(object: JsonObject): boolean {
  return readPlain(object);
}

/** Options of {@linkcode JsonParseError}. */
export interface JsonParseErrorOptions {
  /** The repeated key, when the error is a duplicate key. */
  duplicateKey?: string;
}

/** Raised by {@linkcode parseJson}; `offset` is the UTF-16 index where the input went wrong. */
export class JsonParseError extends SyntaxError {
  /** UTF-16 code unit index into the parsed text. */
  readonly offset: number;
  /** The repeated key, set only for duplicate keys. */
  readonly duplicateKey?: string;

  /**
   * Creates an error.
   *
   * @param message One-line description that includes the offset.
   * @param offset UTF-16 code unit index into the parsed text.
   * @param options The duplicate key, if that is the failure.
   */
  constructor(message: string, offset: number, options: JsonParseErrorOptions = {}) {
    super(message);
    this.name = "JsonParseError";
    this.offset = offset;
    if (options.duplicateKey !== undefined) this.duplicateKey = options.duplicateKey;
  }
}

/** Options of {@linkcode parseJson}. */
export interface ParseJsonOptions {
  /**
   * Accept bare `NaN`, `Infinity` and `-Infinity` tokens (Python tool compatibility).
   *
   * @default {false}
   */
  allowNonFinite?: boolean;
}

/**
 * Parses one JSON text strictly and without loss.
 *
 * @example Usage
 * ```ts
 * import { JsonNumber, JsonObject, JsonParseError, parseJson } from "./_json.ts";
 * import assert from "node:assert/strict";
 *
 * const record = parseJson('{"seq": 18446744073709551617, "ts": 1e-07}');
 * assert.ok(record instanceof JsonObject);
 * assert.equal((record.get("seq") as JsonNumber).raw, "18446744073709551617");
 * assert.throws(() => parseJson('{"a": 1, "a": 2}'), JsonParseError);
 * ```
 *
 * @param text The JSON text, e.g. one log line without its line terminator.
 * @param options Whether non-finite number tokens are accepted.
 * @returns The parsed value.
 * @throws {JsonParseError} When the text is not exactly one valid JSON value (surrounding
 * whitespace allowed), or repeats a key, or nests too deeply.
 */
export function parseJson(text: string, options: ParseJsonOptions = {}): JsonValue {
  const { allowNonFinite = false } = options;
  src = text;
  pos = 0;
  nonFinite = allowNonFinite;
  if (text.charCodeAt(0) === 0xfeff) fail("unexpected byte order mark", 0);
  if (!text.isWellFormed()) fail("lone surrogate", firstLoneSurrogate(text));
  hasControl = CONTROL.test(text);
  nextBackslash = text.indexOf("\\");
  plainStrings = nextBackslash < 0 && !hasControl;
  if (nextBackslash < 0) nextBackslash = text.length;
  trusted = true;
  try {
    skipWhitespace();
    const value = parseValue(0);
    skipWhitespace();
    if (pos !== src.length) fail(`unexpected ${describeAt(pos)} after the value`, pos);
    return value;
  } finally {
    trusted = false;
    src = "";
  }
}

// Parser state lives in module variables: parsing is synchronous and never re-entered, and no
// parser object is allocated per line.
let src = "";
let pos = 0;
let nonFinite = false;
// Index of the next backslash at or after the current string, or src.length: found with the
// native indexOf and reused until passed, so strings without escapes are never scanned in JS.
let nextBackslash = 0;
// Whether the text holds any C0 control character; only then must strings be scanned in JS.
let hasControl = false;
// Whether the text has neither backslashes nor control characters (see hasPlainStrings).
let plainStrings = false;

// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f]/;

function fail(what: string, offset: number): never {
  throw new JsonParseError(`Invalid JSON at offset ${offset}: ${what}`, offset);
}

function quoteForMessage(key: string): string {
  const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return JSON.stringify(shown);
}

function describeAt(offset: number): string {
  if (offset >= src.length) return "end of input";
  const codePoint = src.codePointAt(offset)!;
  return `character ${JSON.stringify(String.fromCodePoint(codePoint))}`;
}

function firstLoneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

function skipWhitespace(): void {
  let c = src.charCodeAt(pos);
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = src.charCodeAt(++pos);
}

function parseValue(depth: number): JsonValue {
  const c = src.charCodeAt(pos);
  switch (c) {
    case 0x22: // "
      return parseString();
    case 0x7b: // {
      return parseObject(depth + 1);
    case 0x5b: // [
      return parseArray(depth + 1);
    case 0x74: // t
      return parseLiteral("true", true);
    case 0x66: // f
      return parseLiteral("false", false);
    case 0x6e: // n
      return parseLiteral("null", null);
    case 0x4e: // N
      return parseNonFinite("NaN");
    case 0x49: // I
      return parseNonFinite("Infinity");
    default:
      if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return parseNumber();
      return fail(`unexpected ${describeAt(pos)}`, pos);
  }
}

function parseLiteral<T extends boolean | null>(word: string, value: T): T {
  if (!src.startsWith(word, pos)) fail(`unexpected ${describeAt(pos)}`, pos);
  pos += word.length;
  return value;
}

function parseNonFinite(word: string, start = pos): JsonNumber {
  if (!src.startsWith(word, pos)) fail(`unexpected ${describeAt(pos)}`, pos);
  if (!nonFinite) {
    fail(`${word} is not JSON: non-finite numbers are accepted only in compatibility mode`, start);
  }
  pos += word.length;
  return new JsonNumber(src.slice(start, pos));
}

function parseNumber(): JsonNumber {
  const start = pos;
  let c = src.charCodeAt(pos);
  if (c === 0x2d) {
    c = src.charCodeAt(++pos);
    if (c === 0x49) return parseNonFinite("Infinity", start); // -Infinity
  }
  if (c === 0x30) {
    c = src.charCodeAt(++pos);
  } else if (c >= 0x31 && c <= 0x39) {
    do c = src.charCodeAt(++pos); while (c >= 0x30 && c <= 0x39);
  } else {
    fail(`expected a digit but found ${describeAt(pos)}`, pos);
  }
  if (c === 0x2e) { // .
    c = src.charCodeAt(++pos);
    if (!(c >= 0x30 && c <= 0x39)) fail(`expected a digit but found ${describeAt(pos)}`, pos);
    do c = src.charCodeAt(++pos); while (c >= 0x30 && c <= 0x39);
  }
  if (c === 0x65 || c === 0x45) { // e E
    c = src.charCodeAt(++pos);
    if (c === 0x2b || c === 0x2d) c = src.charCodeAt(++pos);
    if (!(c >= 0x30 && c <= 0x39)) fail(`expected a digit but found ${describeAt(pos)}`, pos);
    do c = src.charCodeAt(++pos); while (c >= 0x30 && c <= 0x39);
  }
  return new JsonNumber(src.slice(start, pos));
}

function parseString(): string {
  const start = ++pos;
  if (!hasControl) {
    const end = src.indexOf('"', start);
    if (end < 0) fail("unterminated string", start - 1);
    if (nextBackslash < start) {
      nextBackslash = src.indexOf("\\", start);
      if (nextBackslash < 0) nextBackslash = src.length;
    }
    if (nextBackslash > end) {
      pos = end + 1;
      return src.slice(start, end);
    }
  }
  for (;;) {
    const c = src.charCodeAt(pos);
    if (c === 0x22) return src.slice(start, pos++);
    if (c === 0x5c) return parseEscapedString(start);
    if (c < 0x20 || c !== c) { // control character, or NaN past the end
      if (pos >= src.length) fail("unterminated string", start - 1);
      fail(`raw control character U+${hex4(c)} in string`, pos);
    }
    pos++;
  }
}

function hex4(c: number): string {
  return c.toString(16).toUpperCase().padStart(4, "0");
}

function parseEscapedString(start: number): string {
  let out = src.slice(start, pos);
  let chunk = pos;
  for (;;) {
    const c = src.charCodeAt(pos);
    if (c === 0x22) {
      out += src.slice(chunk, pos++);
      return out;
    }
    if (c === 0x5c) {
      out += src.slice(chunk, pos);
      out += readEscape();
      chunk = pos;
      continue;
    }
    if (c < 0x20 || c !== c) {
      if (pos >= src.length) fail("unterminated string", start - 1);
      fail(`raw control character U+${hex4(c)} in string`, pos);
    }
    pos++;
  }
}

// Reads the escape at `pos` (which points at the backslash) and returns the text it stands for.
function readEscape(): string {
  const at = pos;
  const e = src.charCodeAt(pos + 1);
  pos += 2;
  switch (e) {
    case 0x22:
      return '"';
    case 0x5c:
      return "\\";
    case 0x2f:
      return "/";
    case 0x62:
      return "\b";
    case 0x66:
      return "\f";
    case 0x6e:
      return "\n";
    case 0x72:
      return "\r";
    case 0x74:
      return "\t";
    case 0x75: { // u
      const unit = readHex4(at);
      if (unit >= 0xdc00 && unit <= 0xdfff) fail("lone surrogate escape", at);
      if (unit >= 0xd800 && unit <= 0xdbff) {
        if (src.charCodeAt(pos) !== 0x5c || src.charCodeAt(pos + 1) !== 0x75) {
          fail("lone surrogate escape", at);
        }
        pos += 2;
        const low = readHex4(at);
        if (!(low >= 0xdc00 && low <= 0xdfff)) fail("lone surrogate escape", at);
        return String.fromCharCode(unit, low);
      }
      return String.fromCharCode(unit);
    }
    default:
      return fail(`invalid escape ${JSON.stringify(src.slice(at, at + 2))}`, at);
  }
}

function readHex4(escapeAt: number): number {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const c = src.charCodeAt(pos + i);
    let digit: number;
    if (c >= 0x30 && c <= 0x39) digit = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) digit = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) digit = c - 0x37;
    else return fail("invalid \\u escape: expected four hex digits", escapeAt);
    value = value * 16 + digit;
  }
  pos += 4;
  return value;
}

function checkDepth(depth: number): void {
  if (depth > MAX_JSON_DEPTH) fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`, pos);
}

function parseArray(depth: number): JsonValue[] {
  checkDepth(depth);
  pos++;
  const items: JsonValue[] = [];
  skipWhitespace();
  if (src.charCodeAt(pos) === 0x5d) {
    pos++;
    return items;
  }
  for (;;) {
    items.push(parseValue(depth));
    skipWhitespace();
    const c = src.charCodeAt(pos);
    if (c === 0x2c) {
      pos++;
      skipWhitespace();
    } else if (c === 0x5d) {
      pos++;
      return items;
    } else {
      fail(`expected ',' or ']' but found ${describeAt(pos)}`, pos);
    }
  }
}

function parseObject(depth: number): JsonObject {
  checkDepth(depth);
  pos++;
  const entries: [string, JsonValue][] = [];
  let keys: Set<string> | undefined;
  let seenLow = 0;
  let seenHigh = 0;
  skipWhitespace();
  if (src.charCodeAt(pos) === 0x7d) {
    pos++;
    return new JsonObject(entries);
  }
  for (;;) {
    const keyAt = pos;
    if (src.charCodeAt(pos) !== 0x22) {
      fail(`expected a string key but found ${describeAt(pos)}`, pos);
    }
    const key = parseString();
    // Duplicate check: linear while small (cheaper than hashing short keys), then a Set.
    if (keys !== undefined) {
      if (keys.has(key)) duplicate(key, keyAt);
      keys.add(key);
    } else {
      // A 64-bit filter on (length, first, last character) rules out most keys without
      // touching earlier ones; comparing lengths first skips V8's string comparison builtin.
      const length = key.length;
      const bit = (length * 31 + key.charCodeAt(0) + key.charCodeAt(length - 1) * 7) & 63;
      if (bit < 32 ? (seenLow & (1 << bit)) !== 0 : (seenHigh & (1 << (bit - 32))) !== 0) {
        for (let i = 0; i < entries.length; i++) {
          const other = entries[i]![0];
          if (other.length === length && other === key) duplicate(key, keyAt);
        }
      }
      if (bit < 32) seenLow |= 1 << bit;
      else seenHigh |= 1 << (bit - 32);
      if (entries.length >= LINEAR_LIMIT) {
        keys = new Set(entries.map((entry) => entry[0]));
        keys.add(key);
      }
    }
    skipWhitespace();
    if (src.charCodeAt(pos) !== 0x3a) fail(`expected ':' but found ${describeAt(pos)}`, pos);
    pos++;
    skipWhitespace();
    entries.push([key, parseValue(depth)]);
    skipWhitespace();
    const c = src.charCodeAt(pos);
    if (c === 0x2c) {
      pos++;
      skipWhitespace();
    } else if (c === 0x7d) {
      pos++;
      return new JsonObject(entries);
    } else {
      fail(`expected ',' or '}' but found ${describeAt(pos)}`, pos);
    }
  }
}

function duplicate(key: string, offset: number): never {
  throw new JsonParseError(
    `Duplicate key ${quoteForMessage(key)} at offset ${offset}`,
    offset,
    { duplicateKey: key },
  );
}
