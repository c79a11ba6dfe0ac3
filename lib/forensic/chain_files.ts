/**
 * Names and discovery of the files of one log history (DESIGN.md §4): the active file
 * `<stem>.log` and the rotated files, `<stem>-<UTC yyyymmddThhmmssZ>-<first seq>.log` in format
 * v2 and `<stem>-<unix seconds>.log` in format v1 (the Python tool). Only names of exactly those
 * forms belong to the history, so `kv_cache-2-backup.log` is never picked up.
 *
 * @module
 */
import { basename, join } from "../io/path.ts";
import { KvhError } from "../errors.ts";

/**
 * Default name of the active log file, as in the Python tool.
 *
 * @example Usage
 * ```ts
 * import { DEFAULT_LOG_FILE } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_LOG_FILE, "kv_cache.log");
 * ```
 */
export const DEFAULT_LOG_FILE = "kv_cache.log";

/**
 * The lock file of a log: one writer at a time holds it (kvh's writer, `kvh prune` appending to a
 * format-v1 log). It is evidence-adjacent: outputs must never be written over it.
 *
 * @param path Path of the active file.
 * @returns `<path>.lock`.
 *
 * @example Usage
 * ```ts
 * import { logLockPath } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(logLockPath("forensics/kv_cache.log"), "forensics/kv_cache.log.lock");
 * ```
 */
export function logLockPath(path: string): string {
  return `${path}.lock`;
}

/**
 * Where a rotation creates the next active file before the file takes the active name (so the
 * active name never goes missing); never part of the history.
 *
 * @param path Path of the active file.
 * @returns `<path>.next`.
 */
export function nextFilePath(path: string): string {
  return `${path}.next`;
}

/**
 * Why a log that carries MACs is not appended to without its key (`log_key_missing`, exit 1):
 * one message for every appender (trace's writer, prune), naming where the key comes from.
 *
 * @param path Path of the active file.
 * @returns The one-line message.
 */
export function keyMissingMessage(path: string): string {
  return `Cannot append to ${path}: its records carry MACs; give its key (--hmac-key-file or FORENSIC_HMAC_SECRET)`;
}

/** The active file's name without its last extension (`kv_cache.log` → `kv_cache`). */
export function logStem(file: string): string {
  const dot = file.lastIndexOf(".");
  return dot > 0 ? file.slice(0, dot) : file;
}

/**
 * The name a format-v2 file gets when it is rotated out.
 *
 * @param file Name of the active file.
 * @param date Time of the rotation (UTC, to the second).
 * @param firstSeq `seq` of the rotated file's first record.
 * @returns `<stem>-<yyyymmddThhmmssZ>-<firstSeq>.log`.
 */
export function rotatedFileName(file: string, date: Date, firstSeq: number): string {
  return `${logStem(file)}-${utcStamp(date)}-${firstSeq}.log`;
}

/** `yyyymmddThhmmssZ` in UTC, as rotated and torn-tail file names carry it. */
export function utcStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
}

/** Where a rotated file sits in its history. */
export interface RotatedName {
  /** Format the name belongs to. */
  format: "v1" | "v2";
  /** v2: first seq of the file; v1: the Unix seconds of the rotation. */
  position: bigint;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Parses a rotated file's name.
 *
 * @param file Name of the active file.
 * @param name A directory entry.
 * @returns Its format and chain position, or `undefined` when it is not a rotated file of `file`.
 */
export function parseRotatedName(file: string, name: string): RotatedName | undefined {
  const stem = escapeRegExp(logStem(file));
  const v2 = new RegExp(`^${stem}-\\d{8}T\\d{6}Z-(0|[1-9]\\d{0,17})\\.log$`).exec(name);
  if (v2) return { format: "v2", position: BigInt(v2[1]!) };
  const v1 = new RegExp(`^${stem}-([1-9]\\d{0,11})\\.log$`).exec(name);
  if (v1) return { format: "v1", position: BigInt(v1[1]!) };
  return undefined;
}

/**
 * The files of one history in chain order: rotated files (v1 by rotation time, then v2 by first
 * seq), then the active file, which is listed even when it does not exist yet.
 *
 * @param dir Directory of the log.
 * @param file Name of the active file.
 * @returns Paths, oldest first.
 * @throws {KvhError} `log_unreadable` when the directory cannot be listed, `log_symlink` when a
 * rotated file is a symlink.
 *
 * @example Usage
 * ```ts
 * import { listChainFiles } from "./chain_files.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/kv_cache-20260101T000000Z-10.log`, "");
 * await Deno.writeTextFile(`${dir}/kv_cache-20260101T000000Z-2.log`, "");
 * await Deno.writeTextFile(`${dir}/kv_cache-2-backup.log`, "");
 * const files = await listChainFiles(dir);
 * assert.deepEqual(files.map((f) => f.slice(dir.length + 1)), [
 *   "kv_cache-20260101T000000Z-2.log",
 *   "kv_cache-20260101T000000Z-10.log",
 *   "kv_cache.log",
 * ]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function listChainFiles(
  dir: string,
  file: string = DEFAULT_LOG_FILE,
): Promise<string[]> {
  const found: { name: string; rank: number; position: bigint }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const parsed = parseRotatedName(file, entry.name);
      if (parsed === undefined) continue;
      if (entry.isSymlink) {
        throw new KvhError(
          "log_symlink",
          `Refusing rotated log ${join(dir, entry.name)}: it is a symlink`,
        );
      }
      if (!entry.isFile) continue;
      found.push({
        name: entry.name,
        rank: parsed.format === "v1" ? 0 : 1,
        position: parsed.position,
      });
    }
  } catch (error) {
    if (error instanceof KvhError) throw error;
    throw new KvhError("log_unreadable", `Cannot list ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  found.sort(compareRotated);
  return [...found.map((f) => join(dir, f.name)), join(dir, file)];
}

interface RankedName {
  rank: number;
  position: bigint;
}

// v1 names (the Python tool's) before v2 names, then by the position in the name.
function compareRotated(a: RankedName, b: RankedName): number {
  return a.rank - b.rank || (a.position < b.position ? -1 : a.position > b.position ? 1 : 0);
}

/**
 * Puts rotated-file paths of one log in chain order (the order of {@linkcode listChainFiles}),
 * dropping repeats: for merging two listings of a directory that changed in between.
 *
 * @param file The active file's name, e.g. `kv_cache.log`.
 * @param paths Rotated-file paths of that log.
 * @returns The same paths, each once, oldest first.
 */
export function chainOrder(file: string, paths: Iterable<string>): string[] {
  const ranked = [...new Set(paths)].map((path) => {
    const parsed = parseRotatedName(file, basename(path));
    if (parsed === undefined) throw new TypeError(`Not a rotated name of ${file}: ${path}`);
    return { path, rank: parsed.format === "v1" ? 0 : 1, position: parsed.position };
  });
  return ranked.sort(compareRotated).map((r) => r.path);
}
