/**
 * Format v2 of the forensic log (DESIGN.md §4): pure encoding, no file access.
 *
 * A line is the RFC 8785 (JCS) canonical form of the record without `hash` and `mac`, with
 * `,"hash":"…"` and, when keyed, `,"mac":"…"` spliced in before the final `}`. `hash` is the
 * lowercase hex SHA-256 of the canonical body, `mac` the HMAC-SHA256 of the same bytes. Because
 * the body must be byte-identical to its canonical form, a byte-level change to a line cannot
 * leave its content intact.
 *
 * @see {@link https://www.rfc-editor.org/rfc/rfc8785 | RFC 8785}
 * @module
 */
import { constantTimeEqual, hmacHex, sha256Hex } from "./digest.ts";
import { JsonParseError, parseJson } from "./_json.ts";
import { scanCanonicalLine } from "./_canonical_scan.ts";
import {
  canonicalBodyV2,
  checkScalar,
  INTEGER_KEY_RE,
  serialize,
  stringifyOrder,
} from "./canonicalize_v2.ts";
import { GENESIS_V2, type RecordV2 } from "./types.ts";

/** Length of a hex SHA-256 / HMAC-SHA256 digest. */
const HEX_LEN = 64;
/** `,"hash":"` + 64 hex + `"`: the spliced hash member. */
const HASH_MEMBER_LEN = 9 + HEX_LEN + 1;
/** `,"mac":"` + 64 hex + `"`: the spliced mac member. */
const MAC_MEMBER_LEN = 8 + HEX_LEN + 1;

/** The record fields a caller cannot set: the writer owns them. */
export const RESERVED_FIELDS_V2: ReadonlySet<string> = new Set([
  "v",
  "seq",
  "ts",
  "event",
  "prev",
  "hash",
  "mac",
]);

/** Options of {@linkcode sealV2Record}. */
export interface SealV2Options {
  /** HMAC key; when given the line carries `mac`. */
  key?: Uint8Array;
}

/** A sealed format-v2 record. */
export interface SealedV2 {
  /** The line to write, `\n`-terminated. */
  line: string;
  /** `hash` of the record. */
  hash: string;
  /** The canonical body (the record without `hash` and `mac`). */
  body: string;
  /** The record as written. */
  record: RecordV2;
}

/**
 * Seals one record: canonicalises it, computes `hash` (and `mac`) and builds the line.
 *
 * @param header The writer-owned fields.
 * @param fields Event fields; reserved names (`v`, `seq`, `ts`, `event`, `prev`, `hash`, `mac`)
 * are refused.
 * @param options The HMAC key, if any.
 * @returns The line, its hash and its canonical body.
 * @throws {TypeError} On a reserved field name or a value format v2 cannot carry.
 *
 * @example Usage
 * ```ts
 * import { sealV2Record } from "./format_v2.ts";
 * import { GENESIS_V2 } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const sealed = sealV2Record(
 *   { seq: 0, ts: "2026-01-01T00:00:00.000Z", event: "allocate", prev: GENESIS_V2 },
 *   { tenant_id: "t1" },
 * );
 * assert.ok(sealed.line.endsWith(`,"hash":"${sealed.hash}"}\n`));
 * ```
 */
export function sealV2Record(
  header: { seq: number; ts: string; event: string; prev: string },
  fields: Record<string, unknown>,
  options: SealV2Options = {},
): SealedV2 {
  const { body, record } = canonicalRecord(header, fields);
  const hash = sha256Hex(body);
  let line = body.slice(0, -1) + ',"hash":"' + hash + '"';
  record.hash = hash;
  if (options.key !== undefined) {
    const mac = hmacHex(options.key, body);
    line += ',"mac":"' + mac + '"';
    record.mac = mac;
  }
  return { line: line + "}\n", hash, body, record: record as RecordV2 };
}

/** A record sealed by {@linkcode sealV2RecordInto}: its line is in the caller's buffer. */
export interface SealedV2Bytes extends Omit<SealedV2, "line"> {
  /** Length in bytes of the line written, `\n` included. */
  bytes: number;
}

/**
 * Seals one record like {@linkcode sealV2Record}, but writes its line as UTF-8 into `target`
 * from `at` and hashes those bytes where they lie: one UTF-8 encoding per record instead of one
 * for the hash and another for the write, and no line string (a writer seals every record).
 *
 * @param header The writer-owned fields.
 * @param fields Event fields, as for {@linkcode sealV2Record}.
 * @param options The HMAC key, if any.
 * @param target Where the line goes; bytes from `at` on may be overwritten even when it is too
 * short.
 * @param at Offset of the line in `target`.
 * @returns The record, or `undefined` when fewer than 3 bytes per UTF-16 unit of the body plus
 * the spliced members are left after `at` (seal again into a larger buffer).
 * @throws {TypeError} As {@linkcode sealV2Record}.
 *
 * @example Usage
 * ```ts
 * import { sealV2Record, sealV2RecordInto } from "./format_v2.ts";
 * import { GENESIS_V2 } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const header = { seq: 0, ts: "2026-01-01T00:00:00.000Z", event: "allocate", prev: GENESIS_V2 };
 * const target = new Uint8Array(1024);
 * const sealed = sealV2RecordInto(header, { tenant_id: "t1" }, {}, target, 10)!;
 * const line = new TextDecoder().decode(target.subarray(10, 10 + sealed.bytes));
 * assert.equal(line, sealV2Record(header, { tenant_id: "t1" }).line);
 * assert.equal(sealV2RecordInto(header, { tenant_id: "t1" }, {}, new Uint8Array(64), 0), undefined);
 * ```
 */
export function sealV2RecordInto(
  header: { seq: number; ts: string; event: string; prev: string },
  fields: Record<string, unknown>,
  options: SealV2Options,
  target: Uint8Array,
  at: number,
): SealedV2Bytes | undefined {
  const { body, record } = canonicalRecord(header, fields);
  const key = options.key;
  // The body's closing brace gives way to the members, then "}\n".
  const tail = HASH_MEMBER_LEN + (key === undefined ? 0 : MAC_MEMBER_LEN) + 1;
  if (target.length - at < body.length * 3 + tail) return undefined;
  const written = encoder.encodeInto(body, target.subarray(at)).written;
  const bodyBytes = target.subarray(at, at + written);
  const hash = sha256Hex(bodyBytes);
  record.hash = hash;
  // Before the members overwrite the body's closing brace.
  const mac = key === undefined ? undefined : hmacHex(key, bodyBytes);
  let end = spliceMember(target, at + written - 1, HASH_MEMBER, hash);
  if (mac !== undefined) {
    record.mac = mac;
    end = spliceMember(target, end, MAC_MEMBER, mac);
  }
  target[end] = 0x7d; // }
  target[end + 1] = 0x0a; // \n
  return { bytes: end + 2 - at, hash, body, record: record as RecordV2 };
}

const encoder = new TextEncoder();
const HASH_MEMBER = encoder.encode(',"hash":"');
const MAC_MEMBER = encoder.encode(',"mac":"');

/** Writes `,"name":"hex"` at `at`; returns the offset after it. */
function spliceMember(target: Uint8Array, at: number, name: Uint8Array, hex: string): number {
  target.set(name, at);
  at += name.length;
  for (let i = 0; i < hex.length; i++) target[at + i] = hex.charCodeAt(i);
  at += hex.length;
  target[at] = 0x22; // "
  return at + 1;
}

/** The record without `hash` and `mac`, and its canonical (JCS) text. */
function canonicalRecord(
  header: { seq: number; ts: string; event: string; prev: string },
  fields: Record<string, unknown>,
): { body: string; record: Record<string, unknown> } {
  const shape = recordShape(fields);
  // Inserting members in sorted order lets JSON.stringify emit the JCS form directly, which is
  // several times faster than building the text member by member; `stringifyOrder` reports the
  // cases where JSON.stringify's own member order differs (integer-like keys) and the slow
  // serialiser is used instead.
  // A literal object, not Object.create(null): V8 keeps it in fast mode, which JSON.stringify
  // needs to be fast; a `__proto__` field takes the slow serialiser instead.
  // Cloned from the shape's template, the record has all its members from the start: adding
  // them one by one to `{}` regrew its property store several times per record.
  const record: Record<string, unknown> = shape.fast ? { ...shape.template } : {};
  let fast = shape.fast;
  const { names, sources } = shape;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const source = sources[i]!;
    const value = source === FIELD ? fields[name] : source === "v" ? 2 : header[source];
    if (name === "__proto__") Object.defineProperty(record, name, { value, enumerable: true });
    else record[name] = value;
    if (typeof value === "object" && value !== null) {
      if (!stringifyOrder(value, 1)) fast = false;
    } else {
      checkScalar(value);
    }
  }
  return { body: fast ? JSON.stringify(record) : serialize(record, null, 0, true), record };
}

/** Where a member's value comes from: a header field, `v` (always 2), or the event fields. */
type MemberSource = "seq" | "ts" | "event" | "prev" | "v" | typeof FIELD;
const FIELD = 0;

interface RecordShape {
  /** Field and header names, sorted as JCS sorts them. */
  names: string[];
  /** Where each name's value comes from. */
  sources: MemberSource[];
  /** Whether JSON.stringify keeps that order at the top level (no integer-like or `__proto__` key). */
  fast: boolean;
  /** An object with every name, in order, each `undefined`: what a fast record starts from. */
  template: Record<string, undefined>;
}

/**
 * Sorted member names per set of field names. A writer appends few distinct shapes (one per event
 * type), so sorting and checking the names once per shape saves about a tenth of each seal.
 */
const SHAPES = new Map<string, RecordShape>();
const MAX_SHAPES = 1024;

/**
 * The field names of the last records sealed and their shapes: a writer's appends cycle through
 * a few shapes (a tracer's lifecycle is four events), and comparing names is far cheaper than the
 * lookup's signature.
 */
const RECENT: { given: string[]; shape: RecordShape }[] = [];
const RECENT_SHAPES = 8;
let recentNext = 0;

function recordShape(fields: Record<string, unknown>): RecordShape {
  const given = Object.keys(fields);
  for (const recent of RECENT) if (sameNames(given, recent.given)) return recent.shape;
  const shape = lookUpShape(given);
  RECENT[recentNext] = { given, shape };
  recentNext = (recentNext + 1) % RECENT_SHAPES;
  return shape;
}

function sameNames(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function lookUpShape(given: string[]): RecordShape {
  // JSON text keeps names apart whatever characters they hold (a joined string would not).
  const signature = JSON.stringify(given);
  const cached = SHAPES.get(signature);
  if (cached !== undefined) return cached;
  for (const name of given) {
    if (RESERVED_FIELDS_V2.has(name)) {
      throw new TypeError(`Cannot append field ${JSON.stringify(name)}: the writer sets it`);
    }
  }
  const names = [...given, "v", "seq", "ts", "event", "prev"].sort();
  const fast = !names.some((name) => name === "__proto__" || INTEGER_KEY_RE.test(name));
  if (SHAPES.size >= MAX_SHAPES) SHAPES.clear();
  const sources = names.map((name) => HEADER_FIELDS.has(name) ? name as MemberSource : FIELD);
  const template: Record<string, undefined> = {};
  if (fast) { for (const name of names) template[name] = undefined; }
  const shape = { names, sources, fast, template };
  SHAPES.set(signature, shape);
  return shape;
}

const HEADER_FIELDS: ReadonlySet<string> = new Set(["v", "seq", "ts", "event", "prev"]);

/** A record that passed the checks one line allows on its own. */
export interface CheckedV2 {
  ok: true;
  seq: number;
  prev: string;
  hash: string;
  event: string;
  /**
   * The parsed record (including `hash` and `mac`); the fast path parses only `rotate`,
   * `recovery` and `prune` records, whose fields the chain check reads.
   */
  record: Record<string, unknown> | undefined;
  /** Whether the line carries a `mac`. */
  hasMac: boolean;
}

/** A line that failed one of the checks it allows on its own. */
export interface RejectedV2 {
  ok: false;
  reason: "malformed_json" | "unknown_version" | "hash_mismatch" | "mac_missing" | "mac_mismatch";
  detail: string;
}

/**
 * Splits a line into canonical body, `hash` and `mac` when it has the spliced form; `undefined`
 * when it does not.
 */
export function splitV2Line(
  line: string,
): { body: string; hash: string; mac: string | undefined } | undefined {
  const end = splicedBodyEnd(line);
  if (end < 0) return undefined;
  const hashAt = end + HASH_MEMBER_LEN - 1 - HEX_LEN;
  const mac = end + HASH_MEMBER_LEN === line.length - 1
    ? undefined
    : line.slice(line.length - 2 - HEX_LEN, line.length - 2);
  return { body: line.slice(0, end) + "}", hash: line.slice(hashAt, hashAt + HEX_LEN), mac };
}

/**
 * Where the canonical body of a line in the spliced form ends: the offset of `,"hash":"`, which
 * the body's closing brace replaces; -1 when the line does not have that form.
 */
export function splicedBodyEnd(line: string): number {
  const n = line.length;
  if (n < HASH_MEMBER_LEN + 2 || line.charCodeAt(n - 1) !== 0x7d) return -1;
  let end = n - 1;
  // Only the body is parsed on the fast path, so every byte of the spliced members is checked
  // here: the closing quotes too.
  if (line.charCodeAt(end - 1) === 0x22 && line.startsWith(',"mac":"', end - MAC_MEMBER_LEN)) {
    end -= MAC_MEMBER_LEN;
  }
  if (line.charCodeAt(end - 1) !== 0x22 || !line.startsWith(',"hash":"', end - HASH_MEMBER_LEN)) {
    // A record with no event fields other than the hash would have no leading comma; the writer
    // always writes v/seq/ts/event/prev, so such a line is never canonical.
    return -1;
  }
  return end - HASH_MEMBER_LEN;
}

/**
 * Runs the checks of DESIGN.md §3 that need only the line itself, in order: malformed_json,
 * unknown_version, hash_mismatch, mac_missing, mac_mismatch. Duplicate keys are malformed_json:
 * JSON parsers disagree on which copy wins.
 *
 * @param line The line without its `\n`.
 * @param key The HMAC key, if MACs are to be checked.
 * @param confirmed Digests already confirmed by the native batch checker for exactly this
 * line's spliced form (bit 1: `hash` is the SHA-256 of `line.slice(0, end) + "}"`, bit 2:
 * `mac` its HMAC under `key`); those are not hashed again. Anything else is checked here.
 * @returns The record's chain fields, or the first failing check.
 *
 * @example Usage
 * ```ts
 * import { checkV2Line, sealV2Record } from "./format_v2.ts";
 * import { GENESIS_V2 } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const { line } = sealV2Record(
 *   { seq: 0, ts: "2026-01-01T00:00:00.000Z", event: "allocate", prev: GENESIS_V2 },
 *   { tenant_id: "t1" },
 * );
 * assert.equal(checkV2Line(line.slice(0, -1), undefined).ok, true);
 * assert.equal(checkV2Line(line.replace("t1", "t2").slice(0, -1), undefined).ok, false);
 * ```
 */
export function checkV2Line(
  line: string,
  key: Uint8Array | undefined,
  confirmed = 0,
): CheckedV2 | RejectedV2 {
  const fast = checkCanonicalLine(line, key, confirmed);
  if (fast !== undefined) return fast;
  let record: unknown;
  try {
    record = JSON.parse(line);
    parseJson(line);
  } catch (error) {
    return { ok: false, reason: "malformed_json", detail: describeParseError(line, error) };
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    return { ok: false, reason: "malformed_json", detail: "Line is not a JSON object" };
  }
  const fields = record as Record<string, unknown>;
  const shape = checkShape(fields);
  if (shape !== undefined) return shape;
  let body: string;
  try {
    body = canonicalBodyV2(fields);
  } catch (error) {
    return {
      ok: false,
      reason: "hash_mismatch",
      detail: `Record cannot be canonicalised: ${(error as Error).message}`,
    };
  }
  if (sha256Hex(body) !== fields.hash) {
    return {
      ok: false,
      reason: "hash_mismatch",
      detail: `Hash does not match the record at seq ${fields.seq}`,
    };
  }
  return {
    ok: false,
    reason: "hash_mismatch",
    detail:
      `Line at seq ${fields.seq} is not in canonical form: the hash covers the canonical bytes only`,
  };
}

/**
 * The fast path: a line in the exact spliced canonical form is checked without building the
 * record; `undefined` sends anything else to the slow path, which classifies it.
 */
function checkCanonicalLine(
  line: string,
  key: Uint8Array | undefined,
  confirmed: number,
): CheckedV2 | RejectedV2 | undefined {
  const end = splicedBodyEnd(line);
  if (end < 0) return undefined;
  const at = scanCanonicalLine(line, end);
  if (at === undefined) return undefined;
  const { v: vAt, seq: seqAt, prev: prevAt, event: eventAt, ts: tsAt, ends } = at;
  if (vAt < 0 || ends.v - vAt !== 1 || line.charCodeAt(vAt) !== 0x32) return undefined;
  if (seqAt < 0 || prevAt < 0 || eventAt < 0 || tsAt < 0) return undefined;
  if (line.charCodeAt(tsAt) !== 0x22 || line.charCodeAt(eventAt) !== 0x22) return undefined;
  // A number the scanner accepted is canonical, so Number() reads it exactly.
  const seq = Number(line.slice(seqAt, ends.seq));
  if (!Number.isSafeInteger(seq) || seq < 0 || ends.prev - prevAt !== HEX_LEN + 2) {
    return undefined;
  }
  const prev = line.slice(prevAt + 1, prevAt + 1 + HEX_LEN);
  if (!isHex64(prev)) return undefined;
  const eventText = line.slice(eventAt, ends.event);
  const event = eventText.includes("\\") ? JSON.parse(eventText) as string : eventText.slice(1, -1);
  const hashAt = end + HASH_MEMBER_LEN - 1 - HEX_LEN;
  const hash = line.slice(hashAt, hashAt + HEX_LEN);
  const mac = end + HASH_MEMBER_LEN === line.length - 1
    ? undefined
    : line.slice(line.length - 2 - HEX_LEN, line.length - 2);
  const body = line.slice(0, end) + "}";
  // A hash equal to the one computed is well-formed hex by construction, so it is not validated
  // before the comparison; a malformed one simply fails it.
  if ((confirmed & 1) === 0 && sha256Hex(body) !== hash) {
    return {
      ok: false,
      reason: "hash_mismatch",
      detail: `Hash does not match the record at seq ${seq}`,
    };
  }
  // Without a key the MAC cannot be recomputed, but its form can be checked: a MAC that is not
  // a digest (a quote or an upper-case digit in it) is a changed record either way.
  if (mac !== undefined && !isHex64(mac)) {
    return {
      ok: false,
      reason: "mac_mismatch",
      detail: `Field mac at seq ${seq} is not a 64-digit hex digest`,
    };
  }
  if (key !== undefined) {
    if (mac === undefined) {
      return { ok: false, reason: "mac_missing", detail: `Record at seq ${seq} has no mac` };
    }
    if ((confirmed & 2) === 0 && !constantTimeEqual(mac, hmacHex(key, body))) {
      return {
        ok: false,
        reason: "mac_mismatch",
        detail: `Mac does not match the record at seq ${seq}`,
      };
    }
  }
  // Only rotate, recovery and prune records carry fields the chain check reads.
  const record = event === "rotate" || event === "prune" || event === "recovery"
    ? JSON.parse(body) as Record<string, unknown>
    : undefined;
  return { ok: true, seq, prev, hash, event, record, hasMac: mac !== undefined };
}

/** Whether `text` is 64 lowercase hex digits. */
function isHex64(text: string): boolean {
  return HEX64_RE.test(text);
}

const HEX64_RE = /^[0-9a-f]{64}$/;

function describeParseError(line: string, error: unknown): string {
  // JSON.parse accepted the line but the strict parser did not: the difference is a duplicate key.
  if (error instanceof JsonParseError) {
    return error.duplicateKey !== undefined
      ? `Duplicate key ${JSON.stringify(error.duplicateKey)} at offset ${error.offset}`
      : error.message;
  }
  try {
    parseJson(line);
  } catch (strict) {
    if (strict instanceof JsonParseError) return describeParseError(line, strict);
  }
  return `Malformed JSON: ${(error as Error).message}`;
}

function checkShape(record: Record<string, unknown>): RejectedV2 | undefined {
  const { v, seq, prev, hash, event, ts, mac } = record;
  if (v !== 2) {
    return {
      ok: false,
      reason: "unknown_version",
      detail: v === undefined
        ? "Record has no format version v"
        : `Unknown format version v=${JSON.stringify(v)}`,
    };
  }
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
    return {
      ok: false,
      reason: "malformed_json",
      detail: "Field seq is not a non-negative integer",
    };
  }
  if (typeof prev !== "string" || !isHex64(prev)) {
    return {
      ok: false,
      reason: "malformed_json",
      detail: `Field prev at seq ${seq} is not a 64-digit hex digest`,
    };
  }
  if (typeof event !== "string" || typeof ts !== "string") {
    return {
      ok: false,
      reason: "malformed_json",
      detail: `Field event or ts at seq ${seq} is not a string`,
    };
  }
  if (typeof hash !== "string" || !isHex64(hash)) {
    return {
      ok: false,
      reason: "hash_mismatch",
      detail: `Field hash at seq ${seq} is missing or not a 64-digit hex digest`,
    };
  }
  if (mac !== undefined && (typeof mac !== "string" || !isHex64(mac))) {
    return {
      ok: false,
      reason: "mac_mismatch",
      detail: `Field mac at seq ${seq} is not a 64-digit hex digest`,
    };
  }
  return undefined;
}

/** Whether a v2 record is the first record of a history: seq 0 linked to {@linkcode GENESIS_V2}. */
export function isGenesisV2(seq: number, prev: string): boolean {
  return seq === 0 && prev === GENESIS_V2;
}

let lastStampMs = NaN;
let lastStamp = "";

/** RFC 3339 UTC timestamp with milliseconds, as format v2's `ts`. */
export function formatTimestamp(date: Date): string {
  // Appends come many per millisecond; formatting a Date costs about as much as hashing.
  const ms = date.getTime();
  if (ms !== lastStampMs) {
    lastStamp = date.toISOString();
    lastStampMs = ms;
  }
  return lastStamp;
}
