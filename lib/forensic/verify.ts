/**
 * Verification of a forensic log and the rotated files it links back to (DESIGN.md §3 `verify`,
 * §4 formats v1 and v2). Streams every file with bounded memory and reports the first failure as
 * data, never as an exception; only what cannot be read at all throws a {@linkcode KvhError}.
 *
 * @module
 */
import { basename } from "../io/path.ts";
import { describeIoError, KvhError } from "../errors.ts";
import {
  type ChainSnapshot,
  changedSince,
  closeSnapshot,
  openSnapshotFile,
  snapshotChain,
  type SnapshotFile,
  snapshotReader,
  writtenSince,
} from "./_snapshot.ts";
import { CheckPool } from "./_check_pool.ts";
import {
  type CheckLineOptions,
  checkLines,
  checkLinesNatively,
  isLinked,
  type LineResult,
  nativeLineResult,
  type NativeLines,
} from "./_line_check.ts";
import { GENESIS_V1 } from "./format_v1.ts";
import { isGenesisV2 } from "./format_v2.ts";
import { macKeyId } from "./epoch_key.ts";
import { loadNativeDigests } from "./native_digest.ts";
import { readChunks } from "./reader.ts";
import type { ChainHead, VerifyFailure, VerifyReason, VerifyReport } from "./types.ts";

/** Options of {@linkcode verifyLog}. */
export interface VerifyLogOptions {
  /**
   * HMAC key; when given, every record must carry a valid MAC. For a forward-secure log it is
   * the initial key every epoch key is derived from (lib/forensic/epoch_key.ts).
   */
  hmacKey?: Uint8Array;
  /**
   * Further initial keys of a forward-secure log that was rekeyed (the keyring); checked only
   * with `hmacKey`.
   */
  macKeyring?: Uint8Array[];
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
  /**
   * Workers that check lines in parallel (hashing is independent per line; the chain check
   * stays sequential); 0 checks in the calling thread. Workers cost extra CPU (posting lines
   * and results), so they pay off only on big logs and free cores: bench/results/forensic.md.
   * The native line verifier (`libkvh_hash.so`) checks each run on up to 4 threads of its own
   * and is several times faster than Workers, which do not use it.
   *
   * @default {0 with the native line verifier; else one per CPU (at most 4) when the files total 8 MiB or more on 4+ CPUs, else 0}
   */
  workers?: number;
  /**
   * Check digests in batches with the native helper `libkvh_hash.so` (built by
   * ffi/native/build.sh) when it can be loaded; `false` hashes every record through
   * node:crypto. The reports are the same either way.
   *
   * @default {true}
   */
  nativeDigests?: boolean;
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
  /**
   * Whether any verified record carries a MAC (v2 `mac`, v1 `hmac`). With `mac_checked` false
   * it means the MACs were not checked: callers decide on this field, not on warning text.
   */
  mac_present: boolean;
  /**
   * The `recovery` records met, in order: a torn tail moved aside (`torn_tail`), or an active
   * file found missing by the writer (`active_missing`: records written after the previous file
   * are lost, and their seq numbers may be used again after it).
   */
  recoveries: { file: string; line: number; seq: number; reason: string }[];
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
  /** seq of the first v2 record with a MAC. */
  macsFrom: number | undefined;
  /** Forward-secure MACs: the last epoch, its key id, the key a rekey record named. */
  epoch: number | undefined;
  epochFrom: number | undefined;
  keyId: string | undefined;
  rekeyTo: string | undefined;
  recoveries: VerifyLogReport["recoveries"] = [];
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
  // Every file is opened before any is read, so a writer rotating or a prune removing files
  // meanwhile cannot make what is read inconsistent (see _snapshot.ts). A directory listing is
  // not atomic, though: one taken while a writer rotates may miss a file just renamed. So a
  // failure seen while the log was changing is checked again on a new snapshot; a defect in
  // what was committed fails every time.
  for (let attempt = 1;; attempt++) {
    const snapshot = await snapshotChain(path, options.activeOnly ?? false);
    try {
      const report = await verifySnapshot(snapshot, key, options);
      if (report.ok || attempt >= LIVE_ATTEMPTS || !(await changedSince(snapshot))) return report;
    } finally {
      closeSnapshot(snapshot);
    }
  }
}

/** Bytes a verification will read (to decide on Workers); a file gone meanwhile counts 0. */
async function sizeOfAll(files: SnapshotFile[]): Promise<number> {
  let total = 0;
  for (const entry of files) {
    total += Number.isFinite(entry.size)
      ? entry.size
      : await Deno.stat(entry.path).then((info) => info.size, () => 0);
  }
  return total;
}

/** Snapshots a failed verification of a changing log is retried on. */
const LIVE_ATTEMPTS = 4;

async function verifySnapshot(
  snapshot: ChainSnapshot,
  key: Uint8Array | undefined,
  options: VerifyLogOptions,
): Promise<VerifyLogReport> {
  const files = snapshot.files;
  const state = new ChainState();
  const chain: ChainFile[] = [];
  let failure: VerifyFailure | null = null;
  const total = await sizeOfAll(files);
  const cpus = navigator.hardwareConcurrency;
  const native = options.nativeDigests !== false && loadNativeDigests() !== undefined;
  const workers = options.workers ??
    (!native && total >= PARALLEL_MIN_BYTES && cpus >= PARALLEL_MIN_CPUS ? Math.min(cpus, 4) : 0);
  if (!Number.isSafeInteger(workers) || workers < 0) {
    throw new RangeError(`Cannot verify with ${workers} workers: expected a non-negative integer`);
  }
  const epochRoots = key === undefined ? undefined : new Map<string, Uint8Array>();
  for (const root of key === undefined ? [] : [key, ...options.macKeyring ?? []]) {
    epochRoots!.set(macKeyId(root), root);
  }
  const pool = workers > 0
    ? new CheckPool(workers, {
      key,
      epochRoots,
      allowNonFinite: options.allowNonFinite,
      nativeDigests: options.nativeDigests,
    })
    : undefined;
  try {
    for (let index = 0; index < files.length && failure === null; index++) {
      const entry = files[index]!;
      const info: ChainFile = {
        file: basename(entry.path),
        path: entry.path,
        format: "v2",
        records: 0,
        first_seq: null,
        last_seq: null,
        last_hash: null,
        first_prev: null,
      };
      chain.push(info);
      failure = await verifyFile(entry, info, index === 0, state, {
        key,
        epochRoots,
        options,
        pool,
      });
      state.previousFile = info;
    }
  } finally {
    pool?.close();
  }
  if (failure === null && state.anchor !== undefined) {
    const anchor = state.anchor;
    // Any entry of a prune record counts, not only its last: prune writes its record before it
    // deletes, oldest first, so an interrupted prune leaves a history that starts after a middle
    // entry. The entry's hash (and seq) anchor it, so a file deleted by hand still fails.
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
  if (failure === null && snapshot.missingActive !== undefined) {
    const last = chain.at(-1);
    failure = {
      file: basename(snapshot.missingActive),
      line: 0,
      reason: "truncated",
      detail: `Active file ${basename(snapshot.missingActive)} is missing while rotated files ` +
        `exist: records after seq ${last?.last_seq ?? "?"} of ${last?.file ?? "?"} may be lost`,
    };
  }
  const warnings: string[] = [];
  for (const recovery of state.recoveries) {
    if (recovery.reason === "active_missing") {
      warnings.push(
        `File ${recovery.file} starts with a recovery record at seq ${recovery.seq}: the writer ` +
          "found the active file missing, so records written after the file before it are lost",
      );
    }
  }
  if (key === undefined && state.macsSeen) {
    warnings.push("Records carry MACs but no key was given: MACs were not checked");
  }
  return {
    ok: failure === null,
    files: chain.length,
    records: state.records,
    head: state.head,
    mac_checked: key !== undefined,
    mac_present: state.macsSeen,
    failure,
    chain,
    recoveries: state.recoveries,
    warnings,
  };
}

/** Below this many bytes, starting Workers costs more than it saves. */
const PARALLEL_MIN_BYTES = 8 * 1024 * 1024;
/**
 * On 2 CPUs shared with other work, Workers lost to one thread in half of the benchmark runs
 * (bench/results/forensic.md), so they are opt-in there.
 */
const PARALLEL_MIN_CPUS = 4;

interface FileContext {
  key: Uint8Array | undefined;
  epochRoots: Map<string, Uint8Array> | undefined;
  options: VerifyLogOptions;
  pool: CheckPool | undefined;
}

async function verifyFile(
  entry: SnapshotFile,
  info: ChainFile,
  firstFile: boolean,
  state: ChainState,
  context: FileContext,
): Promise<VerifyFailure | null> {
  const { options, pool } = context;
  const lineOptions: CheckLineOptions = {
    key: context.key,
    epochRoots: context.epochRoots,
    allowNonFinite: options.allowNonFinite,
    maxLineBytes: options.maxLineBytes,
    nativeDigests: options.nativeDigests,
  };
  const file = await openSnapshotFile(entry);
  if (file === undefined) {
    // Removed since the snapshot was listed (a prune): the caller sees the log changed and
    // looks again.
    return {
      file: info.file,
      line: 0,
      reason: "linkage_mismatch",
      detail: `File ${info.file} was removed during verification`,
    };
  }
  const chunks = readChunks(snapshotReader(entry, file), {
    maxLineBytes: options.maxLineBytes,
    // Without Workers each run is checked and applied before the next is read.
    reuseBuffer: pool === undefined,
    synchronous: true,
  });
  // Runs in flight: with Workers, several are decoded and checked while the chain consumes the
  // oldest; the main thread only reads bytes and links results.
  const queue: (Checked[] | NativeLines | Promise<LineResult[]>)[] = [];
  const depth = pool === undefined ? 1 : 2 * (pool.size + 1);
  let turn = 0;
  const cursor: FileCursor = { format: undefined, info, firstFile, state, options, lineNo: 0 };
  try {
    let exhausted = false;
    while (true) {
      while (!exhausted && queue.length < depth) {
        const next = await chunks.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const chunk = next.value;
        if (chunk.kind === "torn" && entry.active && await writtenSince(entry)) {
          // A writer was writing this line when the snapshot was taken: it is not committed
          // yet, so it is not part of what this verification covers.
          continue;
        }
        if (chunk.kind !== "lines") {
          queue.push([chunk.kind === "torn" ? TORN : TOO_LONG]);
        } else if (pool === undefined || turn++ % (pool.size + 1) === pool.size) {
          // The main thread takes its share of the runs too: while it checks one, the Workers
          // check theirs, so N Workers make N + 1 checkers.
          queue.push(
            checkLinesNatively(chunk.bytes, lineOptions, pool === undefined) ??
              checkLines(chunk.bytes, lineOptions),
          );
        } else {
          const results = pool.check(chunk.bytes);
          // Results of runs abandoned after a failure must not surface as unhandled rejections.
          results.catch(() => {});
          queue.push(results);
        }
      }
      const head = queue.shift();
      if (head === undefined) return null;
      const results = await head;
      const problem = Array.isArray(results)
        ? applyLines(results, cursor)
        : applyNativeLines(results, cursor, lineOptions);
      if (problem !== undefined) {
        return {
          file: info.file,
          line: cursor.lineNo,
          reason: problem.reason,
          detail: problem.detail,
        };
      }
    }
  } catch (error) {
    throw new KvhError("log_unreadable", `Cannot verify ${info.path}: ${describeIoError(error)}`, {
      cause: error,
    });
  } finally {
    await chunks.return(undefined);
    if (file !== entry.file) file.close();
  }
}

/** The unterminated last line of a file (its text does not matter: it is torn). */
const TORN = { kind: "torn" } as const;
type Checked = LineResult | typeof TORN;
const TOO_LONG: LineResult = { kind: "unreadable", problem: "too_long" };

interface FileCursor {
  format: "v1" | "v2" | undefined;
  info: ChainFile;
  firstFile: boolean;
  state: ChainState;
  options: VerifyLogOptions;
  /** Physical number of the line being applied. */
  lineNo: number;
}

function applyLines(results: Checked[], cursor: FileCursor): Fail | undefined {
  for (let i = 0; i < results.length; i++) {
    cursor.lineNo++;
    const problem = applyLine(results[i]!, cursor);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * Applies a natively checked run: a line linked to the one before it is a plain record that
 * passes every chain check once that one passed, so a run of them moves the chain to its last
 * record at once; every other line is checked and applied as {@linkcode applyLines} does.
 */
function applyNativeLines(
  run: NativeLines,
  cursor: FileCursor,
  options: CheckLineOptions,
): Fail | undefined {
  let linked = 0;
  for (let i = 0; i < run.count; i++) {
    if (isLinked(run, i)) {
      linked++;
      continue;
    }
    if (linked > 0) applyLinked(run, i - 1, linked, cursor);
    linked = 0;
    cursor.lineNo++;
    const problem = applyLine(nativeLineResult(run, i, options), cursor);
    if (problem !== undefined) return problem;
  }
  if (linked > 0) applyLinked(run, run.count - 1, linked, cursor);
  return undefined;
}

const hexDecoder = new TextDecoder("latin1");

/**
 * What chainV2 or chainV1 does for `count` linked lines ending at `last`, each of which passes
 * every check: the same format and MAC presence as the record before, no epoch, no rotate,
 * recovery or prune record, and not the first record of its file.
 */
function applyLinked(run: NativeLines, last: number, count: number, cursor: FileCursor): void {
  const { info, state } = cursor;
  const at = run.hashAt[last]!;
  const hash = hexDecoder.decode(run.bytes.subarray(at, at + 64));
  if (cursor.format === "v2") {
    const seq = run.seqs[last]!;
    state.expectedSeq = seq + 1;
    state.head = { seq, hash };
    info.last_seq = seq;
  } else {
    state.head = { seq: state.records + count - 1, hash };
  }
  state.expectedPrev = hash;
  state.records += count;
  info.records += count;
  info.last_hash = hash;
  cursor.lineNo += count;
}

/** Applies one checked line to the chain; returns the failure, if any. */
function applyLine(result: Checked, cursor: FileCursor): Fail | undefined {
  const { info, options } = cursor;
  if (result.kind === "torn") {
    return new Fail("torn_tail", `Last line of ${info.file} has no line end (torn write)`);
  }
  if (result.kind === "unreadable") {
    const detail = result.problem === "too_long"
      ? `Line is longer than ${options.maxLineBytes ?? 16 * 1024 * 1024} bytes`
      : "Line is not valid UTF-8";
    return new Fail("malformed_json", detail);
  }
  if (result.kind === "blank") {
    // The Python tool skips blank lines; kvh's own format has none.
    return cursor.format === "v1" ? undefined : new Fail("malformed_json", "Line is blank");
  }
  // A line that is not JSON has no format: a v1 line cut in half must not read as a v2 record
  // following v1 records (chain_break).
  if (result.kind === "fail" && result.reason === "malformed_json") {
    return new Fail(result.reason, result.detail);
  }
  const lineFormat = result.kind === "fail" ? result.format : result.kind;
  if (cursor.format === undefined) {
    cursor.format = lineFormat;
    info.format = lineFormat;
  } else if (lineFormat !== cursor.format) {
    return new Fail("chain_break", `A ${lineFormat} record follows ${cursor.format} records`);
  }
  if (result.kind === "fail") return new Fail(result.reason, result.detail);
  if (result.hasMac) cursor.state.macsSeen = true;
  return result.kind === "v2"
    ? chainV2(result, cursor, cursor.lineNo)
    : chainV1(result, cursor, cursor.lineNo);
}

function chainV2(
  result: Extract<LineResult, { kind: "v2" }>,
  cursor: FileCursor,
  lineNo: number,
): Fail | undefined {
  const { info, firstFile, state, options } = cursor;
  const { seq, prev, hash, event } = result;
  if (info.records === 0) {
    info.first_seq = seq;
    info.first_prev = prev;
  }
  if (info.records === 0 && !firstFile) {
    const previous = state.previousFile!;
    // A file starts with a rotate record, or with the recovery record a writer appends when it
    // found the active file missing: both name the file before them and its last hash.
    const linking = event === "rotate" ||
      (event === "recovery" && result.recoveryReason === "active_missing");
    if (
      !linking || result.prevFile !== previous.file ||
      result.prevFileLastHash !== previous.last_hash || prev !== previous.last_hash ||
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
  const unauthenticated = checkMacSequence(result, state);
  if (unauthenticated !== undefined) return unauthenticated;
  if (result.pruned !== undefined) state.prunes.push(...result.pruned);
  if (result.recoveryReason !== undefined) {
    state.recoveries.push({ file: info.file, line: lineNo, seq, reason: result.recoveryReason });
  }
  state.expectedPrev = hash;
  state.expectedSeq = seq + 1;
  state.head = { seq, hash };
  state.records++;
  info.records++;
  info.last_seq = seq;
  info.last_hash = hash;
  return undefined;
}

/**
 * Once records carry MACs, each must (unauthenticated tail data is not evidence); once they carry
 * epochs, each must, continuing the last epoch or the next, under the key id of the one before
 * or the one a rekey record named (the lessons of journald's CVE-2023-31438/31439).
 */
function checkMacSequence(
  result: Extract<LineResult, { kind: "v2" }>,
  state: ChainState,
): Fail | undefined {
  const { seq, epoch } = result;
  if (!result.hasMac && (state.macsFrom !== undefined || epoch !== undefined)) {
    return new Fail(
      "mac_missing",
      epoch === undefined
        ? `Record at seq ${seq} has no mac though records carry MACs from seq ${state.macsFrom}`
        : `Forward-secure record at seq ${seq} has no mac`,
    );
  }
  if (result.hasMac) state.macsFrom ??= seq;
  if (epoch === undefined) {
    if (state.epoch === undefined) return undefined;
    return new Fail(
      "epoch_reset",
      `Record at seq ${seq} has no epoch though epochs began at seq ${state.epochFrom}: a reset ` +
        "to the initial key",
    );
  }
  if (state.epoch === undefined) {
    // Only the first record verified may start past epoch 0: the history before it was pruned
    // (its anchor is checked) or left out (--active-only).
    if (epoch.epoch !== 0 && (state.records > 0 || isGenesisV2(seq, result.prev))) {
      return new Fail(
        "epoch_gap",
        `First forward-secure record at seq ${seq} has epoch ${epoch.epoch}, expected 0`,
      );
    }
  } else {
    if (epoch.epoch < state.epoch) {
      return new Fail(
        "epoch_reset",
        `Epoch ${epoch.epoch} at seq ${seq} goes back from epoch ${state.epoch}`,
      );
    }
    if (epoch.epoch > state.epoch + 1) {
      return new Fail(
        "epoch_gap",
        `Epoch ${epoch.epoch} at seq ${seq} skips from epoch ${state.epoch}`,
      );
    }
    const expected = state.rekeyTo ?? state.keyId;
    if (epoch.keyId !== expected) {
      return new Fail(
        "key_id_mismatch",
        `Record at seq ${seq} is MACed with key ${epoch.keyId}, expected ${expected}: a key ` +
          "changes only after a rekey record naming the new one",
      );
    }
  }
  state.epoch = epoch.epoch;
  state.epochFrom ??= seq;
  state.keyId = epoch.keyId;
  state.rekeyTo = epoch.newKeyId;
  return undefined;
}

function chainV1(
  result: Extract<LineResult, { kind: "v1" }>,
  cursor: FileCursor,
  lineNo: number,
): Fail | undefined {
  const { info, firstFile, state, options } = cursor;
  const { currHash, prevHash, eventType } = result;
  const first = info.records === 0;
  const expectedPrev = first ? GENESIS_V1 : state.expectedPrev;
  if (prevHash !== expectedPrev) {
    return new Fail(
      "chain_break",
      first
        ? "First record of the file does not start at GENESIS"
        : "Field prev_hash does not match the previous curr_hash",
    );
  }
  if (first) {
    const rotateFrom = eventType === "rotate" ? result.prevFileLastHash : undefined;
    info.first_prev = typeof rotateFrom === "string" ? rotateFrom : GENESIS_V1;
    if (!firstFile) {
      const previous = state.previousFile!;
      if (
        eventType !== "rotate" || result.prevFile !== previous.file ||
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
  for (const lastHash of result.prunedLastHashes ?? []) {
    state.prunes.push({ lastHash, lastSeq: undefined });
  }
  state.expectedPrev = currHash;
  state.head = { seq: state.records, hash: currHash };
  state.records++;
  info.records++;
  info.last_hash = currHash;
  return undefined;
}
