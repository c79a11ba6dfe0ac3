/**
 * The forensic log writer (DESIGN.md §4, format v2 and durability): one writer per log under an
 * exclusive lock, a single SHA-256 chain across size-rotated files, critical events fsynced
 * before their append resolves, the rest group-committed, a torn tail moved aside and recorded.
 *
 * @module
 */
import { join } from "../io/path.ts";
import { KvhError } from "../errors.ts";
import { recoverState } from "./_recover.ts";
import { DEFAULT_LOG_FILE, logLockPath, nextFilePath, rotatedFileName } from "./chain_files.ts";
import { formatTimestamp, type SealedV2Bytes, sealV2RecordInto } from "./format_v2.ts";
import type { AppendOptions, AuditSink, ChainHead, RecordV2 } from "./types.ts";
import { GENESIS_V2 } from "./types.ts";

/** Options of {@linkcode openForensicLog}. */
export interface ForensicLogOptions {
  /** Directory of the log; created 0700 when missing. */
  dir: string;
  /**
   * Name of the active file.
   *
   * @default {"kv_cache.log"}
   */
  file?: string;
  /** HMAC key; when given every record carries a `mac`. */
  hmacKey?: Uint8Array;
  /**
   * Size at which the active file is rotated, in bytes.
   *
   * @default {67108864}
   */
  maxBytes?: number;
  /**
   * Longest time a non-critical record waits before its group is written and fsynced, in ms.
   *
   * @default {50}
   */
  commitDelayMs?: number;
  /**
   * Most records a group holds before it is written; the append that fills it waits for the write.
   *
   * @default {1024}
   */
  commitRecords?: number;
  /**
   * Clock for `ts` and rotated file names.
   *
   * @default {() => new Date()}
   */
  now?: () => Date;
  /**
   * Writes bytes to the active file and returns how many were written, as `Deno.FsFile#writeSync`
   * does: a seam for injecting a short write or ENOSPC in tests.
   *
   * @default {(file, data) => file.writeSync(data)}
   */
  writeSync?: (file: Deno.FsFile, data: Uint8Array) => number;
  /**
   * Id of a new log, written into its first record and every rotate record. A log opened again
   * keeps the id its files hold.
   *
   * @default {32 random hex digits}
   */
  logId?: string;
  /**
   * Called once the chain state is known and before any append; the observer it returns is told
   * of every record sealed and every group made durable. Checkpoint signing (lib/transparency)
   * hooks in here, so the writer knows nothing of it.
   */
  observe?: (log: ObservedLog) => Promise<LogObserver>;
  /**
   * Forward-secure MAC keys (lib/forensic/epoch_key.ts `openMacState`): every record carries
   * `epoch` and `key_id` and is MACed with its epoch's key; `hmacKey` is then not used.
   */
  macKeys?: MacKeyProvider;
}

/** Where the writer takes forward-secure MAC keys from; the provider owns its state file. */
export interface MacKeyProvider {
  /** Checks the log's last record (its line, undefined for an empty log) before any append. */
  resume(lastLine: string | undefined): void;
  /** Before a record is sealed: `rotating` when it starts a new file. */
  prepare(rotating: boolean): void;
  /** Epoch, key id and key for the record being sealed. */
  current(): { epoch: number; keyId: string; key: Uint8Array };
  /** The record sealed with {@linkcode MacKeyProvider.current} was queued. */
  recorded(): void;
  /** Resolves once the key state is durable; a rejection fails the log like a failed write. */
  settle(): Promise<void>;
}

/** What an observer learns of the log when it is opened. */
export interface ObservedLog {
  /** Path of the active file. */
  path: string;
  /** The log's id, or undefined for a log started before logs had one. */
  logId: string | undefined;
  /** The last record, or null for an empty log. */
  head: ChainHead | null;
}

/** Told of the log's records as they are sealed and once they are durable. */
export interface LogObserver {
  /**
   * A record was sealed and queued, in seq order.
   *
   * @param body Its canonical body (the bytes its `hash` hashes).
   * @param record The record.
   */
  record(body: string, record: RecordV2): void;
  /**
   * A group is handed to the disk.
   *
   * @returns A token for {@linkcode LogObserver.durable}.
   */
  mark(): unknown;
  /**
   * The records up to `mark` are fsynced. The next group does not wait for the promise; flush
   * and close do, and a rejection fails the log like a failed write.
   *
   * @param mark What {@linkcode LogObserver.mark} returned for the group.
   */
  durable(mark: unknown): Promise<void>;
  /** The log was flushed for the last time and is closing. */
  close(): Promise<void>;
}

/** The group being filled: its lines already UTF-8 encoded, back to back. */
interface Pending {
  data: Uint8Array;
  used: number;
  records: number;
  critical: number;
  /** `seq` of the group's last record, set when the group is committed. */
  lastSeq: number | null;
}

const GROUP_BYTES = 64 * 1024;
/** Room kept free after the queued lines for the next record; a larger one grows the group. */
const SEAL_HEADROOM = 16 * 1024;

/** A new group, in `spare` (a written group's buffer) when it is large enough. */
function newPending(capacity: number, spare?: Uint8Array): Pending {
  const data = spare !== undefined && spare.length >= capacity ? spare : new Uint8Array(capacity);
  return { data, used: 0, records: 0, critical: 0, lastSeq: null };
}

/**
 * Opens (or creates) a forensic log for appending: takes the exclusive lock, recovers a torn
 * tail (moves it aside and appends a `recovery` record with its SHA-256) and continues the chain
 * from the last record, across rotated files when the active file is empty.
 *
 * @param options Directory, file name, key, rotation and commit policy.
 * @returns The open log; call {@linkcode ForensicLog.close} when done.
 * @throws {KvhError} `log_dir_insecure` when the directory is writable by group or others (the
 * message gives the `chmod` that fixes it), `log_locked` when another writer holds the log,
 * `log_symlink` for a
 * symlinked log file, `log_format` for a format-v1 log, `log_corrupt` (exit 2) when the last
 * record is not a valid v2 record (with a wrong key: `mac_mismatch`), `log_key_missing` when the
 * log carries MACs and no key is given, `log_unwritable` on I/O errors.
 *
 * @example Usage
 * ```ts
 * import { openForensicLog } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const log = await openForensicLog({ dir });
 * const record = await log.append("allocate", { tenant_id: "t1", nbytes: 4096 });
 * assert.equal(record.seq, 0);
 * await log.append("quarantine", { handle: "h1" }, { critical: true }); // fsynced first
 * assert.equal(log.head?.seq, 1);
 * await log.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openForensicLog(options: ForensicLogOptions): Promise<ForensicLog> {
  const { dir, file = DEFAULT_LOG_FILE, maxBytes = 64 * 1024 * 1024 } = options;
  const { commitDelayMs = 50, commitRecords = 1024 } = options;
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError("Cannot open forensic log: dir is empty");
  }
  if (file === "" || file.includes("/") || file === "." || file === "..") {
    throw new TypeError(`Cannot open forensic log: invalid file name ${JSON.stringify(file)}`);
  }
  if (!(maxBytes > 0) || !(commitDelayMs >= 0) || !(commitRecords >= 1)) {
    throw new RangeError(
      "Cannot open forensic log: maxBytes, commitDelayMs and commitRecords must be positive",
    );
  }
  const path = join(dir, file);
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw ioError(`Cannot create log directory ${dir}`, error);
  }
  await refuseSharedDir(dir);
  await refuseSymlink(path);
  const lockPath = logLockPath(path);
  await refuseSymlink(lockPath);
  let lock: Deno.FsFile;
  try {
    lock = await Deno.open(lockPath, { read: true, write: true, create: true, mode: 0o600 });
  } catch (error) {
    throw ioError(`Cannot open lock file ${lockPath}`, error);
  }
  let fd: Deno.FsFile | undefined;
  try {
    if (!(await lock.tryLock(true))) {
      throw new KvhError(
        "log_locked",
        `Cannot open ${path}: another writer holds the lock ${lockPath}`,
      );
    }
    let activeWasMissing = false;
    try {
      activeWasMissing = await Deno.lstat(path).then(() => false, (error) => {
        if (error instanceof Deno.errors.NotFound) return true;
        throw error;
      });
      fd = await Deno.open(path, { read: true, append: true, create: true, mode: 0o600 });
      const info = await fd.stat();
      if (!info.isFile) {
        throw new KvhError("log_not_file", `Cannot open ${path}: not a regular file`);
      }
      if (info.mode !== null && (info.mode & 0o777) !== 0o600) await Deno.chmod(path, 0o600);
    } catch (error) {
      if (error instanceof KvhError) throw error;
      throw ioError(`Cannot open ${path}`, error);
    }
    const now = options.now ?? (() => new Date());
    const state = await recoverState(fd, {
      path,
      dir,
      file,
      key: options.macKeys === undefined ? options.hmacKey : undefined,
      forwardSecure: options.macKeys !== undefined,
      now,
      activeWasMissing,
    });
    options.macKeys?.resume(state.lastLine);
    const logId = state.head === null ? options.logId ?? randomLogId() : state.logId;
    const observer = await options.observe?.({ path, logId, head: state.head });
    const log = new ForensicLog({
      path,
      file,
      fd,
      lock,
      key: options.hmacKey !== undefined && options.hmacKey.length > 0 &&
          options.macKeys === undefined
        ? options.hmacKey
        : undefined,
      macKeys: options.macKeys,
      maxBytes,
      commitDelayMs,
      commitRecords,
      now,
      writeSync: options.writeSync ?? ((target, data) => target.writeSync(data)),
      ...state,
      logId,
      observer,
    });
    if (state.continueFrom !== undefined) {
      await log.append("rotate", {
        prev_file: state.continueFrom,
        prev_file_last_hash: state.head!.hash,
      }, { critical: true });
    }
    if (state.missing !== undefined) {
      await log.append("recovery", state.missing, { critical: true });
      log.notices.push(
        `The active file ${path} was missing while rotated files exist: the chain continues from ` +
          `seq ${state.missing.last_seq} of ${state.missing.prev_file} with a recovery record; ` +
          "records written after it are lost",
      );
    }
    if (state.torn !== undefined) {
      const record = await log.append("recovery", state.torn, { critical: true });
      log.notices.push(
        `Recovered a torn tail of ${state.torn.torn_bytes} bytes at the end of ${path} (a write ` +
          `cut short): moved aside to ${state.torn.moved_to}, recorded at seq ${record.seq}`,
      );
    }
    return log;
  } catch (error) {
    fd?.close();
    lock.close();
    throw error;
  }
}

function randomLogId(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/**
 * Refuses a log directory others can write to: whoever can write there can replace, remove or
 * plant the log's files (DESIGN.md §4: dirs 0700).
 */
async function refuseSharedDir(dir: string): Promise<void> {
  let mode: number | null;
  try {
    mode = (await Deno.stat(dir)).mode;
  } catch (error) {
    throw ioError(`Cannot open log directory ${dir}`, error);
  }
  if (mode !== null && (mode & 0o022) !== 0) {
    throw new KvhError(
      "log_dir_insecure",
      `Refusing to write the log in ${dir}: it is writable by group or others (mode ${
        (mode & 0o7777).toString(8).padStart(4, "0")
      }); fix it with: chmod go-w ${shellQuote(dir)}`,
    );
  }
}

/** Quotes a path for a shell command line when it needs it. */
function shellQuote(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

async function refuseSymlink(path: string): Promise<void> {
  try {
    const info = await Deno.lstat(path);
    if (info.isSymlink) {
      throw new KvhError("log_symlink", `Refusing to open ${path}: it is a symlink`);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    if (error instanceof KvhError) throw error;
    throw ioError(`Cannot open ${path}`, error);
  }
}

function ioError(what: string, error: unknown): KvhError {
  const reason = error instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : (error as Error).message;
  return new KvhError("log_unwritable", `${what}: ${reason}`, { cause: error });
}

interface ForensicLogInit {
  path: string;
  file: string;
  fd: Deno.FsFile;
  lock: Deno.FsFile;
  key: Uint8Array | undefined;
  macKeys: MacKeyProvider | undefined;
  maxBytes: number;
  commitDelayMs: number;
  commitRecords: number;
  now: () => Date;
  writeSync: (file: Deno.FsFile, data: Uint8Array) => number;
  head: ChainHead | null;
  size: number;
  fileRecords: number;
  fileFirstSeq: number | null;
  logId: string | undefined;
  observer: LogObserver | undefined;
}

/**
 * An open forensic log (format v2). Appends are sealed in call order; critical events resolve
 * once fsynced, the others once queued for the next group commit (within `commitDelayMs` or
 * `commitRecords`). A failed write makes that and every later append reject with
 * {@linkcode KvhError} `audit_emit_failed` and is counted: callers fail the operation.
 *
 * Create with {@linkcode openForensicLog}.
 *
 * @example Usage
 * ```ts
 * import { openForensicLog } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const log = await openForensicLog({ dir, commitDelayMs: 10 });
 * await log.append("free", { handle: "h1" });
 * await log.flush();
 * assert.equal(log.emitFailures, 0);
 * await log.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ForensicLog implements AuditSink {
  #init: ForensicLogInit;
  #fd: Deno.FsFile;
  #head: ChainHead | null;
  #size: number;
  /** Bytes of the active file that hold complete, written records. */
  #durableSize: number;
  /** `seq` of the last record written whole, or null. */
  #durableSeq: number | null;
  /** Path the active file had before this writer rotated it, until the new file holds a record. */
  #rotatedTo: string | undefined;
  #fileRecords: number;
  #fileFirstSeq: number | null;
  #pending: Pending = newPending(GROUP_BYTES);
  /**
   * The buffer of the last group written, reused by the next group: a fresh buffer per group
   * (hundreds a second for a busy sidecar) was a zero-filled allocation each and external
   * memory that made V8 collect garbage more often.
   */
  #spare: Uint8Array | undefined;
  /** The seal's options, kept while the key stays the same (it changes only per epoch). */
  #sealOptions: { key?: Uint8Array } = {};
  #io: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failure: KvhError | undefined;
  #closed = false;
  /** The observer's work on the last durable group. */
  #observed: Promise<void> = Promise.resolve();
  #emitFailures = 0;
  #criticalEmitFailures = 0;

  /**
   * Use {@linkcode openForensicLog}; the constructor is internal.
   *
   * @param init The opened files and recovered chain state.
   */
  constructor(init: ForensicLogInit) {
    this.#init = init;
    this.#fd = init.fd;
    this.#head = init.head;
    this.#size = init.size;
    this.#durableSize = init.size;
    this.#durableSeq = init.head?.seq ?? null;
    this.#fileRecords = init.fileRecords;
    this.#fileFirstSeq = init.fileFirstSeq;
  }

  /**
   * What opening the log recovered from, one sentence each (a torn tail moved aside, a missing
   * active file): the CLI prints them on stderr.
   */
  readonly notices: string[] = [];

  /** Path of the active file. */
  get path(): string {
    return this.#init.path;
  }

  /** The log's id (in its first record and every rotate record), if it has one. */
  get logId(): string | undefined {
    return this.#init.logId;
  }

  /** `{seq, hash}` of the last record appended, or null for an empty log. */
  get head(): ChainHead | null {
    return this.#head === null ? null : { ...this.#head };
  }

  /** Records that could not be written (`kvh_audit_emit_failures_total`). */
  get emitFailures(): number {
    return this.#emitFailures;
  }

  /** Critical records that could not be written. */
  get criticalEmitFailures(): number {
    return this.#criticalEmitFailures;
  }

  /**
   * Appends one event.
   *
   * @param event Event name.
   * @param fields Event fields: identifiers and digests, never buffer contents. Numbers must be
   * finite, integers safe; the names `v`, `seq`, `ts`, `event`, `prev`, `hash`, `mac` are the
   * writer's.
   * @param options `critical` forces an fsync before the promise resolves.
   * @returns The record as written.
   * @throws {KvhError} `audit_emit_failed` when the log is closed or a write failed.
   * @throws {TypeError} When a field cannot be written exactly.
   */
  append(
    event: string,
    fields: Record<string, unknown>,
    options: AppendOptions = {},
  ): Promise<RecordV2> {
    const critical = options.critical === true;
    if (this.#closed || this.#failure !== undefined) {
      this.#count(1, critical ? 1 : 0);
      const reason = this.#failure?.message ??
        `Cannot append to ${this.#init.path}: the log is closed`;
      return Promise.reject(new KvhError("audit_emit_failed", reason, { cause: this.#failure }));
    }
    let sealed;
    let bytes;
    let mustCommit = critical;
    try {
      if (typeof event !== "string" || event === "") {
        throw new TypeError("Cannot append: event name is empty");
      }
      sealed = this.#seal(event, fields);
      bytes = sealed.bytes;
      if (this.#fileRecords > 0 && this.#size + bytes > this.#init.maxBytes) {
        this.#rotate();
        mustCommit = true;
        sealed = this.#seal(event, fields);
        bytes = sealed.bytes;
      }
      this.#size += bytes;
    } catch (error) {
      this.#count(1, critical ? 1 : 0);
      return Promise.reject(error);
    }
    this.#queue(bytes, critical);
    this.#init.macKeys?.recorded();
    this.#init.observer?.record(sealed.body, sealed.record);
    this.#head = { seq: sealed.record.seq, hash: sealed.hash };
    this.#fileRecords++;
    if (this.#fileFirstSeq === null) this.#fileFirstSeq = sealed.record.seq;
    if (mustCommit) return this.#commit().then(() => sealed.record);
    if (this.#pending.records >= this.#init.commitRecords) {
      // Double buffering: the full group is written and fsynced in the background while the
      // caller seals the next one; the append waits only for the group before it, so at most
      // two groups are ever held in memory.
      const previous = this.#io;
      this.#commit().catch(() => {});
      return previous.then(() => {
        if (this.#failure !== undefined) throw this.#failure;
        return sealed.record;
      });
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#commit().catch(() => {
        // Counted and kept in #failure: the next append, flush or close rejects with it.
      });
    }, this.#init.commitDelayMs);
    return Promise.resolve(sealed.record);
  }

  /**
   * Writes and fsyncs every queued record.
   *
   * @returns Resolves once durable; rejects with `audit_emit_failed` if a write failed.
   */
  async flush(): Promise<void> {
    await this.#commit().finally(() => this.#observed);
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Flushes, releases the lock and closes the files. Idempotent.
   *
   * @returns Resolves once closed; rejects with `audit_emit_failed` if the last write failed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
      await this.#init.observer?.close();
    } finally {
      this.#closed = true;
      closeQuietly(this.#fd);
      closeQuietly(this.#init.lock);
    }
  }

  /**
   * Seals a record into the queued group's buffer after the queued lines, without queueing it
   * yet: its size decides a rotation first, and a rotation seals it again after the rotate record.
   */
  #seal(event: string, fields: Record<string, unknown>): SealedV2Bytes {
    const head = this.#head;
    const logId = this.#init.logId;
    // The id travels in the first record and every rotate record, so it survives pruning.
    if (logId !== undefined && (head === null || event === "rotate")) {
      fields = { ...fields, log_id: logId };
    }
    let key = this.#init.key;
    const macKeys = this.#init.macKeys;
    if (macKeys !== undefined) {
      macKeys.prepare(event === "rotate");
      const current = macKeys.current();
      fields = { ...fields, epoch: current.epoch, key_id: current.keyId };
      key = current.key;
    }
    const header = {
      seq: head === null ? 0 : head.seq + 1,
      ts: formatTimestamp(this.#init.now()),
      event,
      prev: head === null ? GENESIS_V2 : head.hash,
    };
    if (this.#sealOptions.key !== key) this.#sealOptions = { key };
    const options = this.#sealOptions;
    const pending = this.#pending;
    while (true) {
      if (pending.data.length - pending.used < SEAL_HEADROOM) this.#grow(SEAL_HEADROOM);
      const sealed = sealV2RecordInto(header, fields, options, pending.data, pending.used);
      if (sealed !== undefined) return sealed;
      // A record larger than the headroom: rare enough to seal it again.
      this.#grow(pending.data.length);
    }
  }

  /** Makes room for at least `bytes` more bytes after the queued lines. */
  #grow(bytes: number): void {
    const pending = this.#pending;
    const data = new Uint8Array(Math.max(pending.used + bytes, pending.data.length * 2));
    data.set(pending.data.subarray(0, pending.used));
    pending.data = data;
  }

  /** Queues the line {@linkcode #seal} just sealed. */
  #queue(bytes: number, critical: boolean): void {
    const pending = this.#pending;
    pending.used += bytes;
    pending.records++;
    if (critical) pending.critical++;
  }

  #count(records: number, critical: number): void {
    this.#emitFailures += records;
    this.#criticalEmitFailures += critical;
  }

  /** Seals the rotate record and queues the switch to a new active file behind queued writes. */
  #rotate(): void {
    const init = this.#init;
    const rotatedName = rotatedFileName(init.file, init.now(), this.#fileFirstSeq ?? 0);
    const rotatedPath = join(init.path, "..", rotatedName);
    this.#commit().catch(() => {});
    this.#io = this.#io.then(async () => {
      if (this.#failure !== undefined) return;
      // The active name never goes missing: the old file gets its rotated name as a second link,
      // then a new file, created aside, replaces the active name in one rename. A reader (or a
      // crash) in between sees the old file under both names, which both recognise.
      const next = nextFilePath(init.path);
      let linked = false;
      let created: Deno.FsFile | undefined;
      try {
        await this.#fd.syncData();
        this.#fd.close();
        await Deno.link(init.path, rotatedPath);
        linked = true;
        await Deno.remove(next).catch(() => {});
        created = await Deno.open(next, {
          read: true,
          append: true,
          createNew: true,
          mode: 0o600,
        });
        await Deno.rename(next, init.path);
        this.#fd = created;
        this.#rotatedTo = rotatedPath;
        this.#durableSize = 0;
      } catch (error) {
        // Undo: the old file keeps its active name alone.
        if (created !== undefined) {
          closeQuietly(created);
          await Deno.remove(next).catch(() => {});
        }
        if (linked) await Deno.remove(rotatedPath).catch(() => {});
        this.#fail(error, 0, 0, "");
      }
    });
    this.#size = 0;
    this.#fileRecords = 0;
    this.#fileFirstSeq = null;
    const sealed = this.#seal("rotate", {
      prev_file: rotatedName,
      prev_file_last_hash: this.#head!.hash,
    });
    const bytes = sealed.bytes;
    this.#queue(bytes, true);
    this.#init.macKeys?.recorded();
    this.#init.observer?.record(sealed.body, sealed.record);
    this.#size += bytes;
    this.#head = { seq: sealed.record.seq, hash: sealed.hash };
    this.#fileRecords = 1;
    this.#fileFirstSeq = sealed.record.seq;
  }

  #commit(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const pending = this.#pending;
    if (pending.records > 0) {
      pending.lastSeq = this.#head?.seq ?? null;
      // The next group is about as big as this one: size its buffer so it rarely grows.
      this.#pending = newPending(pending.data.length, this.#spare);
      this.#spare = undefined;
      const mark = this.#init.observer?.mark();
      this.#io = this.#io.then(() => this.#write(pending, mark));
    }
    const done = this.#io;
    return done.then(() => {
      if (this.#failure !== undefined) throw this.#failure;
    });
  }

  async #write(pending: Pending, mark: unknown): Promise<void> {
    if (this.#failure !== undefined) {
      this.#count(pending.records, pending.critical);
      return;
    }
    try {
      const data = pending.data.subarray(0, pending.used);
      // A synchronous write (into the page cache, well under a millisecond per group) lets the
      // fsync run in the background while the caller seals the next group: an async write would
      // wait for an event-loop turn between the two, which a busy appender does not give until it
      // blocks on this group, so every group used to pay its fsync in full (~15% of append time).
      let at = 0;
      while (at < data.length) at += this.#init.writeSync(this.#fd, data.subarray(at));
      this.#spare = pending.data;
      await this.#fd.syncData();
      this.#durableSize += data.length;
      // A failed rewrite of the key state fails the log: the next writer would resume from an
      // older key (derivable, so the log stays whole) but the old key would stay on disk.
      await this.#init.macKeys?.settle();
      this.#durableSeq = pending.lastSeq;
      this.#rotatedTo = undefined;
    } catch (error) {
      this.#fail(error, pending.records, pending.critical, this.#cutBack());
      return;
    }
    // Not awaited: an observer's work (a checkpoint: a signature and three fsyncs) must not hold
    // up the next group; flush and close wait for it, and a failure fails the log as before.
    const observed = this.#init.observer?.durable(mark);
    if (observed !== undefined) {
      this.#observed = observed.catch((error) => this.#fail(error, 0, 0, ""));
    }
  }

  /**
   * After a failed write (a short write, ENOSPC): cuts the active file back to its last complete
   * record, so the log verifies, and undoes a rotation whose new file got no record, so a retry
   * on a full disk leaves no empty files behind. Returns what it did, for the error message.
   */
  #cutBack(): string {
    const path = this.#init.path;
    try {
      this.#fd.truncateSync(this.#durableSize);
      this.#fd.syncDataSync();
      if (this.#rotatedTo !== undefined && this.#durableSize === 0) {
        Deno.renameSync(this.#rotatedTo, path);
        this.#rotatedTo = undefined;
        return `; the rotation was undone, the log ends at seq ${this.#durableSeq}`;
      }
      return this.#durableSeq === null
        ? "; the file was cut back to empty"
        : `; the file was cut back to its last complete record (seq ${this.#durableSeq})`;
    } catch (error) {
      return `; cutting it back to its last complete record failed too: ${
        (error as Error).message
      }`;
    }
  }

  #fail(error: unknown, records: number, critical: number, after: string): void {
    this.#count(records, critical);
    this.#failure ??= new KvhError(
      "audit_emit_failed",
      `Cannot write ${this.#init.path}: ${(error as Error).message}${after}`,
      { cause: error },
    );
  }
}

/** Closes a file that a failed rotation may already have closed. */
function closeQuietly(file: Deno.FsFile): void {
  try {
    file.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}
