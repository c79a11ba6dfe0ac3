/**
 * Atomic file replacement for metrics files (DESIGN.md §6): readers see the old file or the
 * new one, never a partial write.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** Options of {@linkcode writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /**
   * Permissions of the file.
   *
   * @default {0o600}
   */
  mode?: number;
}

/**
 * Writes `data` to a temporary file beside `path`, fsyncs it and renames it over `path`.
 * Missing parent directories are created 0700.
 *
 * @param path Destination.
 * @param data Contents (text is written as UTF-8).
 * @param options File mode.
 * @returns When the file is in place.
 *
 * @example Usage
 * ```ts
 * import { writeFileAtomic } from "./write_file_atomic.ts";
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
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const { mode = 0o600 } = options;
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  const temp = join(dir, `.${basename(path)}.${suffix}.tmp`);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    const file = await Deno.open(temp, { write: true, createNew: true, mode });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
