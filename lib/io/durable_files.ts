/**
 * Durable files, in one place: every kvh output, evidence file and archive copy goes through
 * here, so each gets the same guarantee. New files are 0600 and written whole; a
 * replaced file is fsynced and so is its directory, so after a crash a reader finds the old file
 * or the new one, never a partial or vanished one. (The log writer's rotation and the evidence
 * bundle's directory swap rename on their own: each needs a rename this module does not offer.)
 *
 * @module
 */
import { basename, dirname, join } from "./path.ts";

/** Options of {@linkcode writeFileAtomic} and {@linkcode writeNewFile}. */
export interface WriteFileOptions {
  /**
   * Permissions of the file.
   *
   * @default {0o600}
   */
  mode?: number;
}

/**
 * Writes all of `data`: `write` may take only part of it (a short write), so loop until done.
 *
 * @param file Anything with the `write` of `Deno.FsFile`.
 * @param data The bytes.
 * @returns When every byte was handed to the file.
 */
export async function writeAll(
  file: { write(data: Uint8Array): Promise<number> },
  data: Uint8Array,
): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await file.write(data.subarray(offset));
}

/**
 * Fsyncs a directory, so that a file created, renamed or removed in it survives a crash.
 *
 * @param path The directory.
 * @returns When the directory entry changes are durable.
 */
export async function syncDir(path: string): Promise<void> {
  const dir = await Deno.open(path, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/**
 * A name beside `path` that no other writer picks: `.<base>.<random>.tmp` in the same directory,
 * so a rename from it stays on one file system.
 *
 * @param path The file (or directory) the temporary name stands in for.
 * @returns The temporary path.
 */
export function tempSibling(path: string): string {
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  return join(dirname(path), `.${basename(path)}.${suffix}.tmp`);
}

/**
 * Creates `path`, which must not exist (exclusive create, so nothing is ever overwritten), writes
 * `data` whole and fsyncs the file. The caller syncs the directory once its files are in place.
 *
 * @param path The new file.
 * @param data Contents (text is written as UTF-8).
 * @param options File mode.
 * @returns When the file's contents are durable.
 * @throws {Deno.errors.AlreadyExists} When `path` exists.
 */
export async function writeNewFile(
  path: string,
  data: string | Uint8Array,
  options: WriteFileOptions = {},
): Promise<void> {
  const { mode = 0o600 } = options;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const file = await Deno.open(path, { write: true, createNew: true, mode });
  try {
    await writeAll(file, bytes);
    await file.sync();
  } finally {
    file.close();
  }
}

/**
 * Copies `source` to `target`, which must not exist (exclusive create: nothing is overwritten),
 * 0600, and fsyncs the copy; a partial copy is removed on failure. The caller syncs the
 * directory.
 *
 * @param source The file to copy.
 * @param target The new file.
 * @returns When the copy's contents are durable.
 * @throws {Deno.errors.AlreadyExists} When `target` exists.
 */
export async function copyNewFile(source: string, target: string): Promise<void> {
  const out = await Deno.open(target, { write: true, createNew: true, mode: 0o600 });
  try {
    const input = await Deno.open(source, { read: true });
    for await (const chunk of input.readable) await writeAll(out, chunk);
    await out.sync();
  } catch (error) {
    await Deno.remove(target).catch(() => {});
    throw error;
  } finally {
    out.close();
  }
}

/** A file written and fsynced under a temporary name beside its destination, not yet in place. */
export interface StagedFile {
  /**
   * Renames the file over its destination and fsyncs the directory; if the rename fails, the
   * temporary file is removed and the destination is left as it was.
   */
  commit(): Promise<void>;
  /** Removes the temporary file; the destination is left as it was. */
  abort(): Promise<void>;
}

/**
 * The first half of {@linkcode writeFileAtomic}, for a caller that puts several outputs in place
 * together or not at all: writes `data` to a temporary file beside `path` and fsyncs it; the
 * returned {@linkcode StagedFile} renames it into place or removes it. Missing parent
 * directories are created 0700.
 *
 * @param path Destination.
 * @param data Contents (text is written as UTF-8).
 * @param options File mode.
 * @returns The staged file; nothing is left behind when this throws.
 *
 * @example Usage
 * ```ts
 * import { stageFileAtomic } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const staged = await stageFileAtomic(`${dir}/verdict.json`, "{}\n");
 * await staged.commit();
 * assert.equal(await Deno.readTextFile(`${dir}/verdict.json`), "{}\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function stageFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileOptions = {},
): Promise<StagedFile> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = tempSibling(path);
  const abort = () => Deno.remove(temp).catch(() => {});
  try {
    await writeNewFile(temp, data, options);
  } catch (error) {
    await abort();
    throw error;
  }
  return {
    async commit() {
      try {
        await Deno.rename(temp, path);
      } catch (error) {
        await abort();
        throw error;
      }
      await syncDir(dir);
    },
    abort,
  };
}

/**
 * Replaces `path` atomically and durably: writes a temporary file beside it, fsyncs it, renames
 * it over `path` and fsyncs the directory ({@linkcode stageFileAtomic}, committed at once).
 * Readers see the old file or the new one, never a partial write; after a crash the same holds. Missing parent directories are created 0700.
 *
 * @param path Destination.
 * @param data Contents (text is written as UTF-8).
 * @param options File mode.
 * @returns When the file is in place and durable.
 *
 * @example Usage
 * ```ts
 * import { writeFileAtomic } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/metrics.prom`, "kvh_up 1\n");
 * assert.equal(await Deno.readTextFile(`${dir}/metrics.prom`), "kvh_up 1\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileOptions = {},
): Promise<void> {
  await (await stageFileAtomic(path, data, options)).commit();
}
