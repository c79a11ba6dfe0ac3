/**
 * The output guard (DESIGN.md §3, "evidence is never collateral damage"): no output flag may
 * name the forensic log, a file of its chain, its lock, or any other forensic log. A typo such as
 * `kvh verify good.log --out good.log` would otherwise replace the log with its own report.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "./path.ts";
import { KvhError } from "../errors.ts";
import { listChainFiles, logLockPath } from "../forensic/chain_files.ts";

/** A file a flag asks kvh to write. */
export interface OutputTarget {
  /** The flag, e.g. `--out`, for the message. */
  flag: string;
  /** The path as given. */
  path: string;
}

/** How much of an existing target's first line is read to tell whether it is a log record. */
const FIRST_LINE_BYTES = 1 << 20;
/** Symlinks followed by hand for a path that does not exist yet, as the kernel's own limit. */
const MAX_LINKS = 40;

/** A file of the guarded log: where it resolves to and, when it exists, its device and inode. */
interface Guarded {
  /** What the file is, naming it and the log, for the message. */
  what: string;
  resolved: string;
  id: string | undefined;
}

function fileId(info: Deno.FileInfo): string | undefined {
  return info.dev !== null && info.ino !== null ? `${info.dev}:${info.ino}` : undefined;
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch {
    return undefined;
  }
}

/**
 * The absolute path `path` resolves to with every symlink followed, also when the file (or a
 * symlink's target) does not exist yet: that is where a write would land.
 *
 * @param path A path, relative to the working directory or absolute.
 * @param links Symlinks followed so far (recursion).
 * @returns The resolved absolute path.
 */
export async function resolvePath(path: string, links = 0): Promise<string> {
  const absolute = resolve(path);
  try {
    return await Deno.realPath(absolute);
  } catch {
    // Missing: follow a dangling symlink by hand, else resolve the parent and keep the name.
  }
  if (links < MAX_LINKS) {
    const target = await Deno.readLink(absolute).catch(() => undefined);
    if (target !== undefined) {
      return await resolvePath(resolve(dirname(absolute), target), links + 1);
    }
  }
  const parent = dirname(absolute);
  if (parent === absolute) return absolute;
  return join(await resolvePath(parent, links), basename(absolute));
}

async function guardedFiles(log: string): Promise<Guarded[]> {
  const real = await resolvePath(log);
  const paths = new Map<string, string>();
  for (const active of new Set([log, real])) {
    let chain: string[];
    try {
      chain = await listChainFiles(dirname(active), basename(active));
    } catch {
      // A directory that cannot be listed has no rotated files to protect; the rest still holds.
      chain = [active];
    }
    for (const file of chain.slice(0, -1)) {
      paths.set(file, `${file}, a rotated file of the log ${log}`);
    }
    paths.set(active, `the active log ${active}`);
    paths.set(logLockPath(active), `${logLockPath(active)}, the lock of the log ${log}`);
  }
  return await Promise.all(
    [...paths].map(async ([path, what]) => {
      const info = await statOrUndefined(path);
      return { what, resolved: await resolvePath(path), id: info && fileId(info) };
    }),
  );
}

/** Why an existing regular file looks like a forensic log, or `undefined`. */
async function forensicForm(path: string, resolved: string): Promise<string | undefined> {
  for (const name of [basename(path), basename(resolved)]) {
    if (/\.log$|\.log\.lock$/.test(name)) return `its name ${name} has a forensic log's form`;
  }
  const file = await Deno.open(path, { read: true });
  let text: string;
  try {
    const buffer = new Uint8Array(FIRST_LINE_BYTES);
    let filled = 0;
    while (filled < buffer.length) {
      const read = await file.read(buffer.subarray(filled));
      if (read === null) break;
      filled += read;
      if (buffer.subarray(filled - read, filled).includes(0x0a)) break;
    }
    text = new TextDecoder().decode(buffer.subarray(0, filled));
  } finally {
    file.close();
  }
  const newline = text.indexOf("\n");
  const line = newline < 0 ? text : text.slice(0, newline);
  if (/^\s*\{/.test(line) && /"curr_hash"\s*:\s*"/.test(line)) {
    return "its first line is a format v1 record";
  }
  if (/^\s*\{/.test(line) && /"hash"\s*:\s*"/.test(line) && /"prev"\s*:\s*"/.test(line)) {
    return "its first line is a format v2 record";
  }
  if (newline < 0 && text.length >= FIRST_LINE_BYTES && /^\s*\{/.test(line)) {
    return "its first line is over 1 MiB of JSON, as only a log record is";
  }
  return undefined;
}

/**
 * Refuses output targets that would overwrite evidence: after resolving symlinks, and by device
 * and inode where the target exists (so a hard link counts), a target may not be the active log
 * `log`, a file of its chain or its lock, nor any existing file that is itself a forensic log
 * (a name ending in `.log` or `.log.lock`, or a first line that is a format v1 or v2 record).
 * Reads only; call it right after parsing flags, before any log is opened.
 *
 * @param log The active log the command works on, or `undefined` when it has none (gate without
 * `--require-verified`); other logs are still recognised by their form.
 * @param targets The files the command's flags ask it to write.
 * @returns When every target is safe to write.
 * @throws {KvhError} `output_is_evidence` (exit 1), naming the flag, the target and the file it
 * would overwrite.
 *
 * @example Usage
 * ```ts
 * import { refuseEvidenceOutputs } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const log = `${dir}/kv_cache.log`;
 * await refuseEvidenceOutputs(log, [{ flag: "--out", path: `${dir}/verification.json` }]);
 * await assert.rejects(
 *   refuseEvidenceOutputs(log, [{ flag: "--out", path: log }]),
 *   /Refusing --out .*kv_cache\.log: it is the active log/,
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function refuseEvidenceOutputs(
  log: string | undefined,
  targets: readonly OutputTarget[],
): Promise<void> {
  if (targets.length === 0) return;
  const guarded = log === undefined ? [] : await guardedFiles(log);
  for (const { flag, path } of targets) {
    const resolved = await resolvePath(path);
    const info = await statOrUndefined(path);
    const id = info && fileId(info);
    const hit = guarded.find((file) =>
      file.resolved === resolved || (id !== undefined && file.id === id)
    );
    if (hit !== undefined) {
      throw new KvhError(
        "output_is_evidence",
        `Refusing ${flag} ${path}: it is ${hit.what} (evidence is never overwritten)`,
      );
    }
    if (info?.isFile) {
      const why = await forensicForm(path, resolved);
      if (why !== undefined) {
        throw new KvhError(
          "output_is_evidence",
          `Refusing ${flag} ${path}: ${resolved} is a forensic log (${why}; evidence is never overwritten)`,
        );
      }
    }
  }
}
