/**
 * Verification of a forensic log and the rotated files it links back to (DESIGN.md §3 `verify`,
 * §4 formats v1 and v2). Streams every file with bounded memory and reports the first failure as
 * data, never as an exception; only what cannot be read at all throws a {@linkcode KvhError}.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { KvhError } from "../errors.ts";
import { JsonObject, JsonParseError, parseJson } from "./_json.ts";
import { listChainFiles } from "./chain_files.ts";
import { checkV1Record, GENESIS_V1 } from "./format_v1.ts";
import { checkV2Line, isGenesisV2, splitV2Line } from "./format_v2.ts";
import { readLines } from "./reader.ts";
import type { ChainHead, VerifyFailure, VerifyReason, VerifyReport } from "./types.ts";

/** Options of {@linkcode verifyLog}. */
export interface VerifyLogOptions {
  /** HMAC key; when given, every record must carry a valid MAC. */
  hmacKey?: Uint8Array;
  /**
   * Verify only the given file, not the rotated files before it; its first record is taken as
   * the start of the history.
   *
   * @default {false}
   */
  activeOnly?: boolean;
  /**
   * Accept the Python tool's bare `NaN`/`Infinity` tokens in format-v1 lines (a compatibility
   * mode; they are not JSON).
   *
   * @default {false}
   */
  allowNonFinite?: boolean;
  /**
   * Longest line accepted, in bytes; a longer line is malformed_json.
   *
   * @default {16777216}
   */
  maxLineBytes?: number;
}

/** What verification learned about one file of the history. */
export interface ChainFile {
  /** Base name. */
  file: string;
  /** Path as verified. */
  path: string;
  /** Format of its records (`v2` for an empty file). */
  format: "v1" | "v2";
  /** Records verified in the file. */
  records: number;
  /** `seq` of its first record (v2), else null. */
  first_seq: number | null;
  /** `seq` of its last record (v2), else null. */
  last_seq: number | null;
  /** Hash (v1: `curr_hash`) of its last record, null when empty. */
  last_hash: string | null;
  /** v2: `prev` of its first record; v1: `prev_file_last_hash` of its rotate record or `GENESIS`. */
  first_prev: string | null;
}

/** Result of {@linkcode verifyLog}. */
export interface VerifyLogReport extends VerifyReport {
  /** The files of the history, in chain order, as far as verification went. */
  chain: ChainFile[];
  /** Things an operator should know that are not failures, e.g. MACs present but unchecked. */
  warnings: string[];
}

interface PruneEntry {
  lastHash: string;
  lastSeq: number | undefined;
}

interface Anchor {
  file: string;
  line: number;
  prev: string;
  seq: number | undefined;
}

class Fail {
  constructor(readonly reason: VerifyReason, readonly detail: string) {}
}

/** State carried along the whole history. */
class ChainState {
  records = 0;
  head: ChainHead | null = null;
  /** Hash the next record must link to; undefined before the first record of the history. */
  expectedPrev: string | undefined;
  expectedSeq: number | undefined;
  previousFile: ChainFile | undefined;
  anchor: Anchor | undefined;
  prunes: PruneEntry[] = [];
  macsSeen = false;
}

/**
 * Verifies a log: the active file and, unless `activeOnly`, every rotated file before it, in
 * both formats, stopping at the first failure.
 *
 * @param path Path of the active log file.
 * @param options Key, scope and limits.
 * @returns The report: ok, files, records, head, mac_checked, failure, plus the chain's files.
 * @throws {KvhError} When the log cannot be read at all: missing, not a regular file, a symlink,
 * or unreadable (exit code 1).
 *
 * @example Usage
 * ```ts
 * import { openForensicLog, verifyLog } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const log = await openForensicLog({ dir });
 * await log.append("allocate", { tenant_id: "t1" });
 * await log.close();
 * const report = await verifyLog(`${dir}/kv_cache.log`);
 * assert.equal(report.ok, true);
 * assert.equal(report.records, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function verifyLog(
  path: string,
  options: VerifyLogOptions = {},
): Promise<VerifyLogReport> {
  const key = options.hmacKey !== undefined && options.hmacKey.length > 0
    ? options.hmacKey
    : undefined;
  await checkLogPath(path);
  const paths = options.activeOnly ? [path] : await listChainFiles(dirname(path), basename(path));
  const state = new ChainState();
  const chain: ChainFile[] = [];
  let failure: VerifyFailure | null = null;
  for (let index = 0; index < paths.length && failure === null; index++) {
    const filePath = paths[index]!;
    if (index < paths.length - 1) await checkLogPath(filePath);
    const info: ChainFile = {
      file: basename(filePath),
      path: filePath,
      format: "v2",
      records: 0,
      first_seq: null,
      last_seq: null,
      last_hash: null,
      first_prev: null,
    };
    chain.push(info);
    failure = await verifyFile(info, index === 0, state, key, options);
    state.previousFile = info;
  }
  if (failure === null && state.anchor !== undefined) {
    const anchor = state.anchor;
    const linked = state.prunes.some((p) =>
      p.lastHash === anchor.prev && (anchor.seq === undefined || p.lastSeq === anchor.seq - 1)
    );
    if (!linked) {
      failure = {
        file: anchor.file,
        line: anchor.line,
        reason: "linkage_mismatch",
        detail:
          `File ${anchor.file} does not start the history and no prune record names the file before it`,
      };
    }
  }
  const warnings: string[] = [];
  if (key === undefined && state.macsSeen) {
    warnings.push("Records carry MACs but no key was given: MACs were not checked");
  }
  return {
    ok: failure === null,
    files: chain.length,
    records: state.records,
    head: state.head,
    mac_checked: key !== undefined,
    failure,
    chain,
    warnings,
  };
}

async function checkLogPath(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    throw new KvhError("log_unreadable", `Cannot verify ${path}: ${describe(error)}`, {
      cause: error,
    });
  }
  if (info.isSymlink) {
    throw new KvhError("log_symlink", `Refusing to verify ${path}: it is a symlink`);
  }
  if (!info.isFile) throw new KvhError("log_not_file", `Cannot verify ${path}: not a regular file`);
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return (error as Error).message;
}

async function verifyFile(
  info: ChainFile,
  firstFile: boolean,
  state: ChainState,
  key: Uint8Array | undefined,
  options: VerifyLogOptions,
): Promise<VerifyFailure | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(info.path, { read: true });
  } catch (error) {
    throw new KvhError("log_unreadable", `Cannot verify ${info.path}: ${describe(error)}`, {
      cause: error,
    });
  }
  const fail = (line: number, problem: Fail): VerifyFailure => ({
    file: info.file,
    line,
    reason: problem.reason,
    detail: problem.detail,
  });
  let format: "v1" | "v2" | undefined;
  try {
    for await (const batch of readLines(file, { maxLineBytes: options.maxLineBytes })) {
      for (const line of batch) {
        if (!line.terminated) {
          return fail(
            line.lineNo,
            new Fail("torn_tail", `Last line of ${info.file} has no line end (torn write)`),
          );
        }
        const text = line.text;
        if (text === undefined) {
          const detail = line.problem === "too_long"
            ? `Line is longer than ${options.maxLineBytes ?? 16 * 1024 * 1024} bytes`
            : "Line is not valid UTF-8";
          return fail(line.lineNo, new Fail("malformed_json", detail));
        }
        if (format === "v1" && text.trim() === "") continue;
        const lineFormat = detectFormat(text);
        if (format === undefined) {
          format = lineFormat;
          info.format = lineFormat;
        } else if (lineFormat !== format) {
          return fail(
            line.lineNo,
            new Fail("chain_break", `A ${lineFormat} record follows ${format} records`),
          );
        }
        const problem = lineFormat === "v2"
          ? checkV2(text, info, firstFile, state, key, options, line.lineNo)
          : checkV1(text, info, firstFile, state, key, options, line.lineNo);
        if (problem !== undefined) return fail(line.lineNo, problem);
      }
    }
  } catch (error) {
    throw new KvhError("log_unreadable", `Cannot verify ${info.path}: ${describe(error)}`, {
      cause: error,
    });
  } finally {
    file.close();
  }
  return null;
}

function detectFormat(text: string): "v1" | "v2" {
  if (splitV2Line(text) !== undefined) return "v2";
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

function checkV2(
  text: string,
  info: ChainFile,
  firstFile: boolean,
  state: ChainState,
  key: Uint8Array | undefined,
  options: VerifyLogOptions,
  lineNo: number,
): Fail | undefined {
  const checked = checkV2Line(text, key);
  if (!checked.ok) return new Fail(checked.reason, checked.detail);
  const { seq, prev, hash, event, record } = checked;
  if (checked.hasMac) state.macsSeen = true;
  if (info.records === 0) {
    info.first_seq = seq;
    info.first_prev = prev;
  }
  if (info.records === 0 && !firstFile) {
    const previous = state.previousFile!;
    if (
      event !== "rotate" || record?.prev_file !== previous.file ||
      record?.prev_file_last_hash !== previous.last_hash || prev !== previous.last_hash ||
      seq !== state.expectedSeq
    ) {
      return new Fail(
        "linkage_mismatch",
        `File ${info.file} does not continue ${previous.file} (expected a rotate record with prev ` +
          `${previous.last_hash} and seq ${state.expectedSeq})`,
      );
    }
  } else if (state.expectedPrev === undefined) {
    if (!options.activeOnly && !isGenesisV2(seq, prev)) {
      state.anchor = { file: info.file, line: lineNo, prev, seq };
    }
  } else {
    if (prev !== state.expectedPrev) {
      return new Fail("chain_break", `Record at seq ${seq} does not link to the previous record`);
    }
    if (seq !== state.expectedSeq) {
      return new Fail("seq_gap", `Expected seq ${state.expectedSeq}, found ${seq}`);
    }
  }
  if (event === "prune") collectPruneV2(record?.removed, state);
  state.expectedPrev = hash;
  state.expectedSeq = seq + 1;
  state.head = { seq, hash };
  state.records++;
  info.records++;
  info.last_seq = seq;
  info.last_hash = hash;
  return undefined;
}

function collectPruneV2(removed: unknown, state: ChainState): void {
  if (!Array.isArray(removed) || removed.length === 0) return;
  const last: unknown = removed[removed.length - 1];
  if (typeof last !== "object" || last === null) return;
  const { last_hash: lastHash, last_seq: lastSeq } = last as Record<string, unknown>;
  if (typeof lastHash === "string" && typeof lastSeq === "number") {
    state.prunes.push({ lastHash, lastSeq });
  }
}

function checkV1(
  text: string,
  info: ChainFile,
  firstFile: boolean,
  state: ChainState,
  key: Uint8Array | undefined,
  options: VerifyLogOptions,
  lineNo: number,
): Fail | undefined {
  let parsed;
  try {
    parsed = parseJson(text, { allowNonFinite: options.allowNonFinite ?? false });
  } catch (error) {
    if (error instanceof JsonParseError) {
      return new Fail(
        "malformed_json",
        error.duplicateKey !== undefined
          ? `Duplicate key ${JSON.stringify(error.duplicateKey)} at offset ${error.offset}`
          : error.message,
      );
    }
    throw error;
  }
  if (!(parsed instanceof JsonObject)) {
    return new Fail("malformed_json", "Line is not a JSON object");
  }
  let check;
  try {
    check = checkV1Record(parsed, key);
  } catch (error) {
    return new Fail(
      "malformed_json",
      `Record cannot be canonicalised: ${(error as Error).message}`,
    );
  }
  const { currHash, computedHash, prevHash, macOk, hasMac } = check;
  if (currHash !== computedHash) {
    return new Fail(
      "hash_mismatch",
      currHash === undefined ? "Record has no curr_hash" : "curr_hash does not match the record",
    );
  }
  if (hasMac) state.macsSeen = true;
  if (key !== undefined) {
    if (!hasMac) return new Fail("mac_missing", "Record has no hmac");
    if (macOk !== true) return new Fail("mac_mismatch", "hmac does not match the record");
  }
  const eventType = parsed.get("event_type");
  const first = info.records === 0;
  const expectedPrev = first ? GENESIS_V1 : state.expectedPrev;
  if (prevHash !== expectedPrev) {
    return new Fail(
      "chain_break",
      first
        ? "First record of the file does not start at GENESIS"
        : "prev_hash does not match the previous curr_hash",
    );
  }
  if (first) {
    const rotateFrom = eventType === "rotate" ? parsed.get("prev_file_last_hash") : undefined;
    info.first_prev = typeof rotateFrom === "string" ? rotateFrom : GENESIS_V1;
    if (!firstFile) {
      const previous = state.previousFile!;
      if (
        eventType !== "rotate" || parsed.get("prev_file") !== previous.file ||
        rotateFrom !== previous.last_hash
      ) {
        return new Fail(
          "linkage_mismatch",
          `File ${info.file} does not continue ${previous.file} (expected a rotate record naming it)`,
        );
      }
    } else if (!options.activeOnly && eventType === "rotate") {
      state.anchor = {
        file: info.file,
        line: lineNo,
        prev: typeof rotateFrom === "string" ? rotateFrom : "",
        seq: undefined,
      };
    }
  }
  if (eventType === "prune") collectPruneV1(parsed.get("removed"), state);
  state.expectedPrev = currHash;
  state.head = { seq: state.records, hash: currHash! };
  state.records++;
  info.records++;
  info.last_hash = currHash!;
  return undefined;
}

function collectPruneV1(removed: unknown, state: ChainState): void {
  if (!Array.isArray(removed) || removed.length === 0) return;
  const last: unknown = removed[removed.length - 1];
  if (!(last instanceof JsonObject)) return;
  const lastHash = last.get("last_hash");
  if (typeof lastHash === "string") state.prunes.push({ lastHash, lastSeq: undefined });
}
