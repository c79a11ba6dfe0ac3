/**
 * Signed checkpoints for the forensic log writer: keeps the log's Merkle compact range as records
 * are sealed (O(log n) hashes) and, once records are durable, signs a C2SP checkpoint every N
 * records or T seconds, at rotation, at prune and at close. The checkpoint file is replaced
 * atomically and always holds exactly one signed note, the latest; `<file>.d/<size>.note` keeps
 * history when asked.
 *
 * The compact range is persisted beside the checkpoint (`<file>.frontier`, with the log id, size
 * and head hash it belongs to), so a restart continues it without reading the log. When that
 * state does not match the log's head (a run without checkpoints appended since, or a crash
 * between the two files) the range is rebuilt from the log, and the log is checked against the
 * existing checkpoint either way: a writer never signs a history that contradicts what it
 * signed before.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { describeIoError, KvhError } from "../errors.ts";
import type { LogObserver, ObservedLog } from "../forensic/writer.ts";
import type { RecordV2 } from "../forensic/types.ts";
import { syncDir, writeFileAtomic, writeNewFile } from "../io/mod.ts";
import {
  type Checkpoint,
  logOrigin,
  openCheckpoint,
  ORIGIN_PREFIX,
  signCheckpoint,
} from "./checkpoint.ts";
import { appendLeaves, hashBodies, merkleHasher } from "./batch_hash.ts";
import { readLogTree } from "./log_tree.ts";
import { CompactRange, hashEquals } from "./merkle.ts";
import { NoteError, type NoteSigner, parseVerifierKey } from "./note.ts";

/** Options of {@linkcode checkpointer}. */
export interface CheckpointerOptions {
  /** The log's signing key. */
  signer: NoteSigner;
  /** The checkpoint file: its own path, ideally on another volume than the log. */
  checkpointFile: string;
  /**
   * Sign after this many new records.
   *
   * @default {1000}
   */
  everyRecords?: number;
  /**
   * Sign when this many seconds passed since the last checkpoint and new records are durable.
   *
   * @default {60}
   */
  everySeconds?: number;
  /**
   * Also keep every checkpoint as `<file>.d/<size>.note`.
   *
   * @default {false}
   */
  history?: boolean;
  /**
   * Clock, in milliseconds.
   *
   * @default {Date.now}
   */
  now?: () => number;
}

/** The persisted compact range and the log head it belongs to. */
interface FrontierState {
  log_id: string;
  size: number;
  head_hash: string | null;
  compact_range: string[];
}

interface Mark {
  range: CompactRange;
  headHash: string | null;
  force: boolean;
}

/**
 * Builds the writer hook that signs checkpoints: pass the result as `observe` to
 * `openForensicLog`.
 *
 * @param options Key, checkpoint file and cadence.
 * @returns The `observe` callback.
 *
 * @example Usage
 * ```ts
 * import { checkpointer, generateNoteKey, openForensicLog, parseSignerKey } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const signer = parseSignerKey(generateNoteKey("node-1").signerKey);
 * const log = await openForensicLog({
 *   dir,
 *   observe: checkpointer({ signer, checkpointFile: `${dir}/checkpoint` }),
 * });
 * await log.append("allocate", { tenant_id: "t1" });
 * await log.close();
 * assert.match(await Deno.readTextFile(`${dir}/checkpoint`), /^kvh\/[0-9a-f]{32}\n1\n/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function checkpointer(
  options: CheckpointerOptions,
): (log: ObservedLog) => Promise<LogObserver> {
  const { everyRecords = 1000, everySeconds = 60 } = options;
  if (!(Number.isSafeInteger(everyRecords) && everyRecords >= 1) || !(everySeconds > 0)) {
    throw new RangeError("Invalid checkpoint cadence: records and seconds must be positive");
  }
  const resolved = { ...options, everyRecords, everySeconds };
  return (log) => openCheckpointWriter(log, resolved);
}

type ResolvedOptions = CheckpointerOptions & { everyRecords: number; everySeconds: number };

async function openCheckpointWriter(
  log: ObservedLog,
  options: ResolvedOptions,
): Promise<CheckpointWriter> {
  const file = options.checkpointFile;
  if (log.logId === undefined) {
    throw new KvhError(
      "checkpoint_no_log_id",
      `Cannot sign checkpoints for ${log.path}: the log has no log id (it was started before kvh wrote one); start a new log`,
    );
  }
  const origin = logOrigin(log.logId);
  const size = log.head === null ? 0 : log.head.seq + 1;
  const headHash = log.head?.hash ?? null;
  const previous = await readPrevious(file, options.signer, origin);
  const state = await readState(`${file}.frontier`);
  let range: CompactRange | undefined;
  if (
    state !== undefined && state.log_id === log.logId && state.size === size &&
    state.head_hash === headHash && previous?.size === size
  ) {
    const candidate = rangeOf(state);
    if (candidate !== undefined && hashEquals(candidate.root(), previous.root)) range = candidate;
  }
  range ??= await rebuild(log, previous, size);
  return new CheckpointWriter(options, {
    origin,
    range,
    headHash,
    signedSize: previous?.size ?? -1,
  });
}

/** Where a checkpoint writer starts. */
interface WriterState {
  origin: string;
  range: CompactRange;
  headHash: string | null;
  /** Size of the last checkpoint signed; -1 before the first. */
  signedSize: number;
}

class CheckpointWriter implements LogObserver {
  #options: ResolvedOptions;
  #origin: string;
  #range: CompactRange;
  #headHash: string | null;
  #force = false;
  /** Size of the last checkpoint signed; -1 before the first. */
  #signedSize: number;
  #signedAt: number;
  #now: () => number;
  /** The newest durable mark waiting to be signed by the write in flight. */
  #next: { range: CompactRange; headHash: string | null } | undefined;
  #writing: Promise<void> = Promise.resolve();
  #failure: unknown;
  /** Canonical bodies sealed since the range was last extended. */
  #bodies: string[] = [];
  #hasher = merkleHasher();

  constructor(options: ResolvedOptions, state: WriterState) {
    this.#options = options;
    this.#origin = state.origin;
    this.#range = state.range;
    this.#headHash = state.headHash;
    this.#signedSize = state.signedSize;
    this.#now = options.now ?? Date.now;
    this.#signedAt = this.#now();
  }

  record(body: string, record: RecordV2): void {
    // Hashed per group in mark(): one native call instead of a node:crypto hash per record.
    this.#bodies.push(body);
    this.#headHash = record.hash;
    if (record.event === "rotate" || record.event === "prune") this.#force = true;
  }

  mark(): Mark {
    this.#hashBodies();
    const mark = { range: this.#range, headHash: this.#headHash, force: this.#force };
    this.#force = false;
    return mark;
  }

  durable(mark: unknown): Promise<void> {
    const { range, headHash, force } = mark as Mark;
    const due = force || range.size - this.#signedSize >= this.#options.everyRecords ||
      this.#now() - this.#signedAt >= this.#options.everySeconds * 1000;
    if (due && range.size > this.#signedSize && this.#failure === undefined) {
      this.#schedule(range, headHash);
    }
    return this.#writing.then(() => this.#throwFailure());
  }

  async close(): Promise<void> {
    await this.#writing;
    this.#throwFailure();
    this.#hashBodies();
    // An empty log has no record holding its id yet: nothing to sign, nothing to protect.
    if (this.#range.size > Math.max(this.#signedSize, 0)) {
      await this.#sign(this.#range, this.#headHash);
      this.#signedSize = this.#range.size;
    }
  }

  /**
   * Signs off the append path: the writer's next group must not wait for a signature and three
   * fsyncs (~24 ms a checkpoint, 3.4× the cost of appending). At most one write is in flight;
   * what becomes due meanwhile is coalesced into the latest durable mark, which is all a reader
   * of the checkpoint file can see anyway. A failure is kept and rejects every later
   * {@linkcode durable} and {@linkcode close}.
   */
  #schedule(range: CompactRange, headHash: string | null): void {
    // Counted as signed now so marks arriving meanwhile are not due again for the same records.
    this.#signedSize = range.size;
    this.#signedAt = this.#now();
    const idle = this.#next === undefined;
    this.#next = { range, headHash };
    if (!idle) return;
    this.#writing = this.#writing.then(async () => {
      while (this.#next !== undefined && this.#failure === undefined) {
        const next = this.#next;
        try {
          await this.#sign(next.range, next.headHash);
        } catch (error) {
          this.#failure = error;
        }
        if (this.#next === next) this.#next = undefined;
      }
      this.#next = undefined;
    });
  }

  /** Extends the range (a new object: marks keep theirs) by the records sealed since. */
  #hashBodies(): void {
    if (this.#bodies.length === 0) return;
    const leaves = hashBodies(this.#bodies, this.#hasher);
    this.#range = appendLeaves(this.#range, leaves, this.#hasher);
    this.#bodies = [];
  }

  #throwFailure(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  async #sign(range: CompactRange, headHash: string | null): Promise<void> {
    const { checkpointFile: file, signer, history } = this.#options;
    const checkpoint: Checkpoint = { origin: this.#origin, size: range.size, root: range.root() };
    const note = signCheckpoint(checkpoint, signer);
    const state: FrontierState = {
      log_id: this.#origin.slice(ORIGIN_PREFIX.length),
      size: range.size,
      head_hash: headHash,
      compact_range: range.hashes.map((h) => Buffer.from(h).toString("base64")),
    };
    try {
      // The state first: a crash between the two leaves a state the next open does not trust
      // (its size differs from the checkpoint's) and rebuilds, never a checkpoint ahead of it.
      await writeFileAtomic(`${file}.frontier`, JSON.stringify(state) + "\n");
      await writeFileAtomic(file, note);
      if (history) await keepHistory(`${file}.d`, range.size, note);
    } catch (error) {
      throw new KvhError(
        "checkpoint_unwritable",
        `Cannot write checkpoint ${file}: ${describeIoError(error)}`,
        { cause: error },
      );
    }
  }
}

async function keepHistory(dir: string, size: number, note: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await writeNewFile(`${dir}/${size}.note`, note);
  } catch (error) {
    // A note of that size is already kept: the first one signed stays (history is append-only).
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    return;
  }
  await syncDir(dir);
}

/** The checkpoint this key signed last for this log, checked; undefined when there is none. */
async function readPrevious(
  file: string,
  signer: NoteSigner,
  origin: string,
): Promise<Checkpoint | undefined> {
  const note = await readIfPresent(file, "--checkpoint-file");
  if (note === undefined) return undefined;
  let checkpoint: Checkpoint;
  try {
    checkpoint = openCheckpoint(note, parseVerifierKey(signer.verifierKey));
  } catch (error) {
    if (!(error instanceof NoteError)) throw error;
    throw new KvhError(
      "checkpoint_mismatch",
      `Refusing to sign checkpoints into ${file}: it holds a checkpoint this key cannot verify (${error.reason})`,
      { exitCode: 2, cause: error },
    );
  }
  if (checkpoint.origin !== origin) {
    throw new KvhError(
      "checkpoint_mismatch",
      `Refusing to sign checkpoints into ${file}: it belongs to log ${checkpoint.origin}, not ${origin}`,
      { exitCode: 2 },
    );
  }
  return checkpoint;
}

async function readState(path: string): Promise<FrontierState | undefined> {
  const text = await readIfPresent(path, "checkpoint state");
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as FrontierState;
  } catch {
    // A damaged state file is only a cache: the range is rebuilt from the log.
    return undefined;
  }
}

function rangeOf(state: FrontierState): CompactRange | undefined {
  try {
    return new CompactRange(
      state.size,
      state.compact_range.map((h) => new Uint8Array(Buffer.from(h, "base64"))),
    );
  } catch {
    return undefined;
  }
}

/**
 * Rebuilds the compact range from the log and checks the log against the last checkpoint: the
 * log must hold at least its records, and the same ones.
 */
async function rebuild(
  log: ObservedLog,
  previous: Checkpoint | undefined,
  size: number,
): Promise<CompactRange> {
  const { tree, conflict } = await readLogTree(log.path);
  if (conflict !== undefined) {
    throw new KvhError(
      "checkpoint_mismatch",
      `Refusing to sign checkpoints for ${log.path}: ${conflict.file} line ${conflict.line} belongs to log ${conflict.found}`,
      { exitCode: 2 },
    );
  }
  if (tree.size !== size) {
    throw new KvhError(
      "tree_unavailable",
      `Cannot build the Merkle tree of ${log.path}: ${tree.size} records read, ${size} expected`,
      { exitCode: 2 },
    );
  }
  if (previous !== undefined) {
    if (previous.size > size) {
      throw new KvhError(
        "checkpoint_truncated",
        `Refusing to continue ${log.path}: it holds ${size} records, its last checkpoint ${previous.size} (truncated)`,
        { exitCode: 2 },
      );
    }
    if (previous.size > 0 && !hashEquals(tree.root(previous.size), previous.root)) {
      throw new KvhError(
        "checkpoint_fork",
        `Refusing to continue ${log.path}: its first ${previous.size} records do not match its last checkpoint (fork)`,
        { exitCode: 2 },
      );
    }
  }
  return tree.compactRange(size);
}

async function readIfPresent(path: string, what: string): Promise<string | undefined> {
  try {
    const info = await Deno.lstat(path);
    if (info.isSymlink) {
      throw new KvhError("checkpoint_symlink", `Refusing ${what} ${path}: it is a symlink`);
    }
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    if (error instanceof KvhError) throw error;
    throw new KvhError(
      "checkpoint_unreadable",
      `Cannot read ${what} ${path}: ${describeIoError(error)}`,
      {
        cause: error,
      },
    );
  }
}
