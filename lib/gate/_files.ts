/**
 * Durable file creation for the evidence bundle and retention's archive: new files are 0600,
 * written completely and fsynced; directories are fsynced so renames survive a crash. (Atomic
 * replacement of a single file is lib/metrics/write_file_atomic.ts.)
 *
 * @module
 */

/** Splits a path into its directory and base name, ignoring trailing slashes. */
export function splitPath(path: string): { dir: string; base: string } {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  const slash = trimmed.lastIndexOf("/");
  if (slash < 0) return { dir: ".", base: trimmed };
  return { dir: slash === 0 ? "/" : trimmed.slice(0, slash), base: trimmed.slice(slash + 1) };
}

/** A name beside `path` that no other writer picks: `.<base>.tmp-<random>`. */
export function tempSibling(path: string): string {
  const { dir, base } = splitPath(path);
  return `${dir}/.${base}.tmp-${crypto.randomUUID().slice(0, 8)}`;
}

/** Creates `path` (which must not exist) with mode 0600, writes `data` and fsyncs it. */
export async function writeNewFile(path: string, data: Uint8Array): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  try {
    let offset = 0;
    while (offset < data.length) offset += await file.write(data.subarray(offset));
    await file.sync();
  } finally {
    file.close();
  }
}

/** Fsyncs a directory so a rename or unlink in it survives a crash. */
export async function syncDir(path: string): Promise<void> {
  const dir = await Deno.open(path, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}
