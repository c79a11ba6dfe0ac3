/**
 * Torn-tail recovery and chain-state discovery for the writer (DESIGN.md §4, durability): a last
 * line without its newline is moved aside, never dropped, and the chain continues from the last
 * complete record, in the last rotated file if a crash left the active file empty.
 *
 * @module
 */
import { describeIoError, KvhError } from "../errors.ts";
import { join } from "../io/path.ts";
import { writeAll } from "../io/mod.ts";
import { keyMissingMessage, listChainFiles, nextFilePath, utcStamp } from "./chain_files.ts";
import { sameFile } from "./_snapshot.ts";
import { sha256Hex } from "./digest.ts";
import { checkV2Line } from "./format_v2.ts";
import { readEpochFields } from "./epoch_key.ts";
import type { ChainHead } from "./types.ts";

const MAX_TAIL_BYTES = 16 * 1024 * 1024;

/** Options of {@linkcode recoverState}. */
export interface RecoverOptions {
  /** Path of the active file. */
  path: string;
  /** Directory of the log. */
  dir: string;
  /** Name of the active file. */
  file: string;
  /** HMAC key, when the log has one. */
  key: Uint8Array | undefined;
  /** Whether the writer MACs with forward-secure keys (which check the last record themselves). */
  forwardSecure?: boolean;
  /** Clock for the name of a moved-aside torn tail. */
  now: () => Date;
  /** Whether the active file did not exist before the writer opened (created) it. */
  activeWasMissing: boolean;
}

/** The chain state a writer continues from. */
export interface RecoveredState {
  head: ChainHead | null;
  size: number;
  fileRecords: number;
  fileFirstSeq: number | null;
  /** The last record's line (without `\n`), for a forward-secure writer's check. */
  lastLine?: string;
  /** Rotated file to link to with a rotate record when the active file is empty. */
  continueFrom?: string;
  /** `log_id` of the first record of the active file (of the last rotated file when it is empty). */
  logId?: string;
  /** Fields of the `recovery` record to append for a torn tail. */
  torn?: { torn_bytes: number; torn_sha256: string; moved_to: string };
  /**
   * Fields of the `recovery` record that continues the chain when the active file was missing
   * while rotated files existed (instead of a rotate record: the records after the last rotated
   * file are lost, and the log says so).
   */
  missing?: {
    reason: "active_missing";
    missing_file: string;
    prev_file: string;
    prev_file_last_hash: string;
    last_seq: number;
    log_id?: string;
  };
}

/**
 * Reads where a log's chain stands before appending: moves a torn tail aside (its fields go into
 * a `recovery` record), finds the last record (in the last rotated file when the active file is
 * empty) and checks it, and the first seq of the active file (for its rotated name).
 *
 * @param fd The active file, open for reading and appending.
 * @param options Where the log is, its key (to check the last record) and the clock.
 * @returns The state to continue from.
 */
export async function recoverState(
  fd: Deno.FsFile,
  options: RecoverOptions,
): Promise<RecoveredState> {
  const { path, dir, file, now, activeWasMissing } = options;
  const key = { key: options.key, forwardSecure: options.forwardSecure === true };
  await finishRotation(fd, dir, file);
  let size = (await fd.stat()).size;
  let torn: RecoveredState["torn"];
  if (size > 0) {
    const lastNewline = await findLastNewline(fd, size, size);
    if (lastNewline !== size - 1) {
      const start = lastNewline + 1;
      if (size - start > MAX_TAIL_BYTES) {
        throw new KvhError(
          "log_corrupt",
          `Cannot recover ${path}: torn tail of ${size - start} bytes is too long`,
          {
            exitCode: 2,
          },
        );
      }
      const bytes = await readRange(fd, start, size - start);
      const movedTo = `${path}.torn-${utcStamp(now())}-${start}`;
      await moveAside(movedTo, bytes, path);
      await fd.truncate(start);
      await fd.syncData();
      torn = {
        torn_bytes: bytes.length,
        torn_sha256: sha256Hex(bytes),
        moved_to: movedTo.slice(dir.length + 1),
      };
      size = start;
    }
  }
  if (size === 0) {
    const chain = await listChainFiles(dir, file);
    const rotated = chain.slice(0, -1);
    const last = rotated[rotated.length - 1];
    if (last === undefined) {
      return { head: null, size: 0, fileRecords: 0, fileFirstSeq: null, torn };
    }
    using previous = await Deno.open(last, { read: true });
    const previousSize = (await previous.stat()).size;
    const { line: lastLine, ...head } = await lastRecord(previous, previousSize, last, key);
    const logId = logIdOf(await readFirstLine(previous, previousSize, last));
    const lastName = last.slice(dir.length + 1);
    if (activeWasMissing) {
      const missing = {
        reason: "active_missing" as const,
        missing_file: file,
        prev_file: lastName,
        prev_file_last_hash: head.hash,
        last_seq: head.seq,
        // The recovery record starts the new active file, as a rotate record would: it names the log.
        ...(logId === undefined ? {} : { log_id: logId }),
      };
      return { head, lastLine, logId, size: 0, fileRecords: 0, fileFirstSeq: null, missing, torn };
    }
    return {
      head,
      lastLine,
      logId,
      size: 0,
      fileRecords: 0,
      fileFirstSeq: null,
      continueFrom: lastName,
      torn,
    };
  }
  const { line: lastLine, ...head } = await lastRecord(fd, size, path, key);
  const firstLine = await readFirstLine(fd, size, path);
  const first = checkV2Line(
    firstLine,
    readEpochFields(firstLine) === undefined ? key.key : undefined,
  );
  if (!first.ok) {
    throw new KvhError(
      "log_corrupt",
      `Cannot continue ${path}: line 1 fails verification (${first.reason}): run kvh verify`,
      { exitCode: 2 },
    );
  }
  // Records per file only decide whether a rotation may happen, so a count of "some" suffices.
  return {
    head,
    lastLine,
    size,
    fileRecords: 1,
    fileFirstSeq: first.seq,
    logId: logIdOf(firstLine),
    torn,
  };
}

/**
 * Writes a torn tail to its side file, durably; on failure (a full disk) removes what it created,
 * so a retry leaves no partial side files, and the tail stays where it was.
 */
async function moveAside(target: string, bytes: Uint8Array, path: string): Promise<void> {
  let created = false;
  try {
    using file = await Deno.open(target, { write: true, createNew: true, mode: 0o600 });
    created = true;
    await writeAll(file, bytes);
    await file.sync();
  } catch (error) {
    if (created) await Deno.remove(target).catch(() => {});
    throw new KvhError(
      "log_unwritable",
      `Cannot move the torn tail of ${path} aside to ${target}: ${describeIoError(error)}`,
      { cause: error },
    );
  }
}

/**
 * Completes a rotation a crash interrupted: the old file may carry its rotated name and still
 * the active one (the rotated name is dropped: the file stays active), and the next file may
 * sit aside, empty (it is removed).
 */
async function finishRotation(fd: Deno.FsFile, dir: string, file: string): Promise<void> {
  const active = await fd.stat();
  const newest = (await listChainFiles(dir, file)).at(-2);
  if (newest !== undefined && sameFile(await Deno.lstat(newest), active)) await Deno.remove(newest);
  await Deno.remove(nextFilePath(join(dir, file))).catch(() => {});
}

async function readRange(fd: Deno.FsFile, start: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await fd.seek(start, Deno.SeekMode.Start);
  let at = 0;
  while (at < length) {
    const n = await fd.read(out.subarray(at));
    if (n === null) break;
    at += n;
  }
  return out.subarray(0, at);
}

/** Offset of the last `\n` before `end`, or -1. */
async function findLastNewline(fd: Deno.FsFile, size: number, end: number): Promise<number> {
  const block = 64 * 1024;
  let to = Math.min(end, size);
  while (to > 0) {
    const from = Math.max(0, to - block);
    const bytes = await readRange(fd, from, to - from);
    const at = bytes.lastIndexOf(0x0a);
    if (at !== -1) return from + at;
    if (end - from > MAX_TAIL_BYTES) return -2;
    to = from;
  }
  return -1;
}

async function lastRecord(
  fd: Deno.FsFile,
  size: number,
  path: string,
  keys: { key: Uint8Array | undefined; forwardSecure: boolean },
): Promise<ChainHead & { line: string }> {
  // size - 1 is the final `\n`; the last line starts after the newline before it.
  const before = await findLastNewline(fd, size, size - 1);
  if (before === -2) {
    throw new KvhError(
      "log_corrupt",
      `Cannot continue ${path}: its last line is longer than 16 MiB`,
      { exitCode: 2 },
    );
  }
  const bytes = await readRange(fd, before + 1, size - 1 - (before + 1));
  const text = new TextDecoder().decode(bytes);
  if (/"curr_hash"\s*:/.test(text) && !text.includes('"v":')) {
    throw new KvhError(
      "log_format",
      `Cannot append to ${path}: it is a format v1 log of the Python tool; start kvh's log in another file`,
    );
  }
  // A forward-secure record is MACed with its epoch's key, which the state file checks.
  const epoch = readEpochFields(text);
  if (epoch !== undefined && !keys.forwardSecure) {
    throw new KvhError(
      "log_key_missing",
      `Cannot append to ${path}: its records carry forward-secure MACs (epoch): give --mac-state-file`,
    );
  }
  const key = epoch === undefined || keys.key === undefined ? keys.key : undefined;
  const checked = checkV2Line(text, key);
  if (!checked.ok) {
    throw new KvhError(
      "log_corrupt",
      `Cannot continue ${path}: its last record fails verification (${checked.reason}): run kvh verify`,
      { exitCode: 2 },
    );
  }
  if (key === undefined && checked.hasMac && !keys.forwardSecure) {
    // A record appended without a MAC would make the log fail verification with its key forever.
    throw new KvhError("log_key_missing", keyMissingMessage(path));
  }
  return { seq: checked.seq, hash: checked.hash, line: text };
}

function logIdOf(line: string): string | undefined {
  try {
    const id = (JSON.parse(line) as { log_id?: unknown }).log_id;
    return typeof id === "string" ? id : undefined;
  } catch {
    // Not JSON (the last rotated file's first line is not checked here): no log id, as in an
    // old log; a checkpointer then refuses to sign.
    return undefined;
  }
}

/** The first line of a file that holds at least one complete line, however long (≤ 16 MiB). */
async function readFirstLine(fd: Deno.FsFile, size: number, path: string): Promise<string> {
  const block = 64 * 1024;
  let end = -1;
  for (let from = 0; end === -1 && from < size; from += block) {
    if (from > MAX_TAIL_BYTES) {
      throw new KvhError(
        "log_corrupt",
        `Cannot continue ${path}: line 1 is longer than 16 MiB`,
        { exitCode: 2 },
      );
    }
    const at = (await readRange(fd, from, Math.min(block, size - from))).indexOf(0x0a);
    if (at !== -1) end = from + at;
  }
  return new TextDecoder().decode(await readRange(fd, 0, end === -1 ? size : end));
}
