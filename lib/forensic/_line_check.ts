/**
 * The part of verification that needs one line only (DESIGN.md §3, per record: malformed_json,
 * unknown_version, hash_mismatch, mac_missing, mac_mismatch), for both formats of §4. Pure and
 * independent per line, so it runs in the main thread or in Workers; the chain checks that link
 * lines together stay in verify.ts.
 *
 * @module
 */
import { JsonObject, JsonParseError, type JsonValue, parseJson } from "./_json.ts";
import { confirmDigests, HASH_CONFIRMED, MAC_CONFIRMED } from "./_digest_batch.ts";
import { constantTimeEqual, hmacHex, sha256Hex } from "./digest.ts";
import { checkV1Record, scanV1Line, type V1LineScan } from "./format_v1.ts";
import { checkV2Line, splicedBodyEnd } from "./format_v2.ts";
import { decodeLine, decodeLines, type LineProblem } from "./reader.ts";
import { LINE_LINKED, type LineVerdicts, loadNativeDigests } from "./native_digest.ts";
import { type EpochFields, epochKeyFor, MAX_EPOCH_STEPS, readEpochFields } from "./epoch_key.ts";
import type { VerifyReason } from "./types.ts";

/** What one line amounts to before the chain is checked. */
export type LineResult =
  | { kind: "blank" }
  /** The line has no text: over the cap or not UTF-8. */
  | { kind: "unreadable"; problem: LineProblem }
  | { kind: "fail"; format: "v1" | "v2"; reason: VerifyReason; detail: string }
  | {
    kind: "v2";
    seq: number;
    prev: string;
    hash: string;
    event: string;
    hasMac: boolean;
    /** `prev_file` and `prev_file_last_hash` of a rotate or recovery record. */
    prevFile?: unknown;
    prevFileLastHash?: unknown;
    /** A recovery record's `reason` (`torn_tail` when it has none, as kvh's first ones). */
    recoveryReason?: string;
    /** The entries of a prune record's `removed` list. */
    pruned?: { lastHash: string; lastSeq: number }[];
    /** Forward-secure MAC fields (epoch_key.ts), when the record has an `epoch`. */
    epoch?: EpochFields;
  }
  | {
    kind: "v1";
    currHash: string;
    prevHash: string | undefined;
    hasMac: boolean;
    eventType: unknown;
    prevFile?: unknown;
    prevFileLastHash?: unknown;
    /** `last_hash` of each entry of a v1 prune record's `removed` list. */
    prunedLastHashes?: string[];
  };

/** Options of {@linkcode checkLine}. */
export interface CheckLineOptions {
  /** HMAC key; when given, a record without a valid MAC fails. */
  key?: Uint8Array;
  /**
   * Initial keys by key id (epoch_key.ts): a record with an `epoch` is MACed with the key of its
   * epoch descending from the initial key its `key_id` names.
   */
  epochRoots?: Map<string, Uint8Array>;
  /** Accept NaN/Infinity tokens in v1 lines. */
  allowNonFinite?: boolean;
  /**
   * Hash with the native batch checker (lib/forensic/native_digest.ts) when it is available;
   * `false` keeps every digest in node:crypto. Both give the same results.
   *
   * @default {true}
   */
  nativeDigests?: boolean;
  /**
   * Longest line checked, in bytes (used by {@linkcode checkLines}).
   *
   * @default {16777216}
   */
  maxLineBytes?: number;
}

/**
 * Decodes and checks a run of complete lines (a `lines` chunk of reader.ts).
 *
 * @param bytes The lines, `\n` between them.
 * @param options Key, v1 compatibility and line cap.
 * @returns One result per line, in order.
 */
export function checkLines(bytes: Uint8Array, options: CheckLineOptions): LineResult[] {
  const decoded = decodeLines(bytes, options.maxLineBytes);
  // Lines in the Python tool's written form are scanned once, for the batch and the check.
  const scans: (V1LineScan | null)[] = new Array(decoded.length).fill(null);
  for (let i = 0; i < decoded.length; i++) {
    const text = decoded[i]!;
    if (typeof text === "string" && splicedBodyEnd(text) < 0) scans[i] = scanV1Line(text) ?? null;
  }
  const confirmed = options.nativeDigests === false
    ? undefined
    : confirmDigests(decoded, scans, options.key);
  const results: LineResult[] = new Array(decoded.length);
  for (let i = 0; i < decoded.length; i++) {
    const text = decoded[i]!;
    results[i] = typeof text === "string"
      ? checkLine(text, options, confirmed?.[i], scans[i])
      : { kind: "unreadable", problem: text.problem };
  }
  return results;
}

/**
 * A run of lines checked by the native line verifier: most lines are settled by their verdict
 * alone; {@linkcode nativeLineResult} gives the result of any line.
 */
export interface NativeLines extends LineVerdicts {
  /** The lines, `\n` between them. */
  bytes: Uint8Array;
  /** Number of lines. */
  count: number;
}

/**
 * Threads of the native line verifier, which checks a large run in parts at once: on a quiet
 * 2-core machine two halve its time (the hashing and scanning that dominate a verify), and
 * under load they cost no more CPU than one.
 */
const NATIVE_THREADS = Math.max(1, Math.min(navigator.hardwareConcurrency, 4));

/** Bytes per line the verdict arrays are first sized for (log records are longer). */
const BYTES_PER_LINE_GUESS = 128;
const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * Checks a run of complete lines with the native line verifier (ffi/native/kvh_hash.c), which
 * settles every plain record that links to the one before it; the caller applies those in bulk
 * and the others through {@linkcode nativeLineResult}. Both give what {@linkcode checkLines}
 * gives, line for line.
 *
 * @param bytes The lines, `\n` between them.
 * @param options Key, v1 compatibility and line cap.
 * @param reuse Write the verdicts into arrays shared by every call that reuses them, valid
 * until the next such call (fresh memory costs a page fault per page).
 * @returns The verdicts, or `undefined` without the native library or with `nativeDigests`
 * false.
 */
export function checkLinesNatively(
  bytes: Uint8Array,
  options: CheckLineOptions,
  reuse = false,
): NativeLines | undefined {
  if (options.nativeDigests === false) return undefined;
  const native = loadNativeDigests();
  if (native === undefined) return undefined;
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const guess = Math.ceil(bytes.length / BYTES_PER_LINE_GUESS) + 16;
  let out = reuse && shared !== undefined && shared.status.length >= guess
    ? shared
    : verdicts(guess);
  let count = 0;
  let from = 0;
  while (true) {
    if (count === out.status.length) {
      const grown = verdicts(2 * count);
      grown.status.set(out.status);
      grown.ends.set(out.ends);
      grown.seqs.set(out.seqs);
      grown.hashAt.set(out.hashAt);
      out = grown;
    }
    const described = native.verifyLines(bytes.subarray(from), maxLineBytes, options.key, {
      status: out.status.subarray(count),
      ends: out.ends.subarray(count),
      seqs: out.seqs.subarray(count),
      hashAt: out.hashAt.subarray(count),
    }, NATIVE_THREADS);
    if (from > 0) {
      // Offsets of a resumed call count from where it started.
      for (let i = count; i < count + described; i++) {
        out.ends[i]! += from;
        out.hashAt[i]! += from;
      }
    }
    count += described;
    const end = out.ends[count - 1]!;
    if (end >= bytes.length) {
      if (reuse) shared = out;
      return { ...out, bytes, count };
    }
    from = end + 1;
  }
}

let shared: LineVerdicts | undefined;

function verdicts(capacity: number): LineVerdicts {
  return {
    status: new Uint8Array(capacity),
    ends: new Uint32Array(capacity),
    seqs: new Float64Array(capacity),
    hashAt: new Uint32Array(capacity),
  };
}

/**
 * The result of line `index` of a natively checked run, from the TypeScript check.
 *
 * @param run The run.
 * @param index The line.
 * @param options As given to {@linkcode checkLinesNatively}.
 */
export function nativeLineResult(
  run: NativeLines,
  index: number,
  options: CheckLineOptions,
): LineResult {
  const start = index === 0 ? 0 : run.ends[index - 1]! + 1;
  const text = decodeLine(run.bytes.subarray(start, run.ends[index]), options.maxLineBytes);
  return typeof text === "string"
    ? checkLine(text, options)
    : { kind: "unreadable", problem: text.problem };
}

/** Whether line `index` of a natively checked run links to the line before it. */
export function isLinked(run: NativeLines, index: number): boolean {
  return (run.status[index]! & LINE_LINKED) !== 0;
}

/**
 * Checks one line on its own, detecting its format.
 *
 * @param text The line without its `\n`.
 * @param options Key and v1 compatibility.
 * @param confirmed Digests the native batch checker confirmed (see checkV2Line; for a v1 line,
 * those of its scan's message).
 * @param scan The line's {@linkcode scanV1Line}, `null` when it has none; scanned here when
 * not given.
 * @returns The record's chain fields, `blank`, or the first failing check.
 */
export function checkLine(
  text: string,
  options: CheckLineOptions,
  confirmed = 0,
  scan?: V1LineScan | null,
): LineResult {
  if (text.trim() === "") return { kind: "blank" };
  if (splicedBodyEnd(text) >= 0) return checkV2(text, options, confirmed);
  const scanned = scan === undefined ? scanV1Line(text) : scan;
  if (scanned) {
    const fast = checkV1Scan(scanned, options.key, confirmed);
    if (fast !== undefined) return fast;
  }
  // A v1 line is parsed once: when the strict parse finds curr_hash and no v, detectFormat would
  // say v1 too (JSON.parse sees the same members, or fails on NaN and its fallback finds
  // curr_hash), so the parse is handed on instead of repeated.
  let parsed: JsonValue | undefined;
  try {
    parsed = parseJson(text, { allowNonFinite: options.allowNonFinite ?? false });
  } catch (error) {
    if (!(error instanceof JsonParseError)) throw error;
  }
  if (parsed instanceof JsonObject && !parsed.has("v") && parsed.has("curr_hash")) {
    return checkV1Parsed(parsed, options);
  }
  return detectFormat(text) === "v2" ? checkV2(text, options) : checkV1(text, options);
}

function detectFormat(text: string): "v1" | "v2" {
  if (splicedBodyEnd(text) >= 0) return "v2";
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Object.hasOwn(value, "v")) {
      if (Object.hasOwn(value, "curr_hash") || Object.hasOwn(value, "prev_hash")) return "v1";
    }
    return "v2";
  } catch {
    // JSON.parse rejects the Python tool's NaN/Infinity tokens; its lines carry curr_hash.
    return /"curr_hash"\s*:/.test(text) ? "v1" : "v2";
  }
}

/**
 * The v1 fast path: a record whose scan hashes (and MACs) as it says passes; anything else goes
 * to the full path, which finds and words the failure.
 */
function checkV1Scan(
  scan: V1LineScan,
  key: Uint8Array | undefined,
  confirmed: number,
): LineResult | undefined {
  const { message, currHash, prevHash, mac, eventType } = scan;
  if ((confirmed & HASH_CONFIRMED) === 0 && sha256Hex(message) !== currHash) return undefined;
  if (key !== undefined) {
    if (mac === undefined) return undefined;
    if ((confirmed & MAC_CONFIRMED) === 0 && !constantTimeEqual(mac, hmacHex(key, message))) {
      return undefined;
    }
  }
  return { kind: "v1", currHash, prevHash, hasMac: mac !== undefined, eventType };
}

function checkV2(text: string, options: CheckLineOptions, confirmed = 0): LineResult {
  let key = options.key;
  const epoch = readEpochFields(text);
  let keyProblem: { reason: VerifyReason; detail: string } | undefined;
  if (typeof epoch === "string") {
    return { kind: "fail", format: "v2", reason: "malformed_json", detail: epoch };
  }
  if (epoch !== undefined) {
    // The native batch checked the MAC with the initial key; an epoch's key is checked here.
    confirmed &= HASH_CONFIRMED;
    const root = options.epochRoots?.get(epoch.keyId);
    key = root === undefined ? undefined : epochKeyFor(root, epoch.epoch);
    if (options.key !== undefined && root === undefined) {
      keyProblem = {
        reason: "unknown_key",
        detail: `Record is MACed with key ${epoch.keyId}, which is neither --hmac-key-file nor ` +
          "in the --keyring",
      };
    } else if (root !== undefined && key === undefined) {
      keyProblem = {
        reason: "epoch_gap",
        detail: `Epoch ${epoch.epoch} is more than ${MAX_EPOCH_STEPS} epochs ahead`,
      };
    }
  }
  const checked = checkV2Line(text, key, confirmed);
  if (!checked.ok) {
    return { kind: "fail", format: "v2", reason: checked.reason, detail: checked.detail };
  }
  if (keyProblem !== undefined) {
    return {
      kind: "fail",
      format: "v2",
      reason: keyProblem.reason,
      detail: `${keyProblem.detail} (seq ${checked.seq})`,
    };
  }
  const { seq, prev, hash, event, record, hasMac } = checked;
  const result: LineResult = { kind: "v2", seq, prev, hash, event, hasMac };
  if (epoch !== undefined) result.epoch = epoch;
  if (event === "rotate" || event === "recovery") {
    result.prevFile = record?.prev_file;
    result.prevFileLastHash = record?.prev_file_last_hash;
    if (event === "recovery") {
      result.recoveryReason = typeof record?.reason === "string" ? record.reason : "torn_tail";
    }
  } else if (event === "prune") {
    const removed = record?.removed;
    result.pruned = [];
    for (const entry of Array.isArray(removed) ? removed : []) {
      if (typeof entry !== "object" || entry === null) continue;
      const { last_hash: lastHash, last_seq: lastSeq } = entry as Record<string, unknown>;
      if (typeof lastHash === "string" && typeof lastSeq === "number") {
        result.pruned.push({ lastHash, lastSeq });
      }
    }
  }
  return result;
}

function fail(reason: VerifyReason, detail: string): LineResult {
  return { kind: "fail", format: "v1", reason, detail };
}

function checkV1(text: string, options: CheckLineOptions): LineResult {
  let parsed;
  try {
    parsed = parseJson(text, { allowNonFinite: options.allowNonFinite ?? false });
  } catch (error) {
    if (!(error instanceof JsonParseError)) throw error;
    return fail(
      "malformed_json",
      error.duplicateKey !== undefined
        ? `Duplicate key ${JSON.stringify(error.duplicateKey)} at offset ${error.offset}`
        : error.message,
    );
  }
  if (!(parsed instanceof JsonObject)) return fail("malformed_json", "Line is not a JSON object");
  return checkV1Parsed(parsed, options);
}

function checkV1Parsed(parsed: JsonObject, options: CheckLineOptions): LineResult {
  let check;
  try {
    check = checkV1Record(parsed, options.key);
  } catch (error) {
    return fail("malformed_json", `Record cannot be canonicalised: ${(error as Error).message}`);
  }
  const { currHash, computedHash, prevHash, macOk, hasMac } = check;
  if (currHash === undefined || currHash !== computedHash) {
    return fail(
      "hash_mismatch",
      currHash === undefined
        ? "Record has no curr_hash"
        : "Field curr_hash does not match the record",
    );
  }
  if (options.key !== undefined) {
    if (!hasMac) return fail("mac_missing", "Record has no hmac");
    if (macOk !== true) return fail("mac_mismatch", "Field hmac does not match the record");
  }
  const eventType = parsed.get("event_type");
  const result: LineResult = { kind: "v1", currHash, prevHash, hasMac, eventType };
  if (eventType === "rotate") {
    result.prevFile = parsed.get("prev_file");
    result.prevFileLastHash = parsed.get("prev_file_last_hash");
  } else if (eventType === "prune") {
    const removed = parsed.get("removed");
    result.prunedLastHashes = [];
    for (const entry of Array.isArray(removed) ? removed : []) {
      const lastHash = entry instanceof JsonObject ? entry.get("last_hash") : undefined;
      if (typeof lastHash === "string") result.prunedLastHashes.push(lastHash);
    }
  }
  return result;
}
