/**
 * Appending one record to a format-v1 log (the Python tool's, DESIGN.md §4) the way that tool
 * appends, under kvh's writer lock: used by `kvh prune` to record what it removes from a v1
 * history. kvh never writes v1 logs otherwise.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import { writeAll } from "../io/mod.ts";
import { logLockPath } from "./chain_files.ts";
import { sealV1Record } from "./format_v1.ts";
import { verifyLog } from "./verify.ts";

/** Options of {@linkcode appendV1Record}. */
export interface AppendV1Options {
  /** `curr_hash` the active file's last record must still have (what was verified). */
  expectedLast: string;
  /** HMAC key of the log, when it has one. */
  hmacKey?: Uint8Array;
  /** What the error messages say the append was for, e.g. `prune`. */
  purpose: string;
}

/**
 * Appends one format-v1 record to a v1 log's active file, chained to its last record, and
 * fsyncs it. Takes the writer lock; since the Python writer takes none, the active file is
 * verified again under the lock and must still end at `expectedLast`.
 *
 * @param path Path of the active file.
 * @param fields The record's fields (`event_type` and event fields).
 * @param options The expected last hash, key and purpose.
 * @returns `seq` (always null in v1) and `curr_hash` of the appended record.
 * @throws {KvhError} `log_locked` when another kvh writer holds the lock, `log_changed` when
 * the file no longer ends where it was verified.
 */
export async function appendV1Record(
  path: string,
  fields: Record<string, unknown>,
  options: AppendV1Options,
): Promise<{ seq: null; hash: string }> {
  const { expectedLast, hmacKey, purpose } = options;
  const lockPath = logLockPath(path);
  const lock = await Deno.open(lockPath, { read: true, write: true, create: true, mode: 0o600 });
  try {
    if (!(await lock.tryLock(true))) {
      throw new KvhError(
        "log_locked",
        `Cannot ${purpose} ${path}: another writer holds the lock ${lockPath}`,
      );
    }
    // The Python writer takes no lock: make sure nothing was appended since verification.
    const active = await verifyLog(path, { hmacKey, activeOnly: true });
    const last = active.chain.at(-1)?.last_hash;
    if (!active.ok || last !== expectedLast) {
      throw new KvhError(
        "log_changed",
        `Cannot ${purpose} ${path}: it changed since it was verified (is the Python writer still running?)`,
      );
    }
    const { line, currHash } = sealV1Record(fields, last, { key: hmacKey });
    const file = await Deno.open(path, { write: true, append: true });
    try {
      await writeAll(file, new TextEncoder().encode(line + "\n"));
      await file.sync();
    } finally {
      file.close();
    }
    return { seq: null, hash: currHash };
  } finally {
    lock.close();
  }
}
