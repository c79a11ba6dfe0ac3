/**
 * A consistent view of a log's files for verification while a writer appends and rotates
 * (DESIGN.md §4): the active file is opened once, up front, and read through that handle up to
 * its size when it was opened, so a rotation or further appends change nothing that is read.
 * Rotated files never change; they are opened one at a time as they are read (a long history
 * must not hold a descriptor per file), and one that a prune removed meanwhile shows as a
 * change of the log, which the caller answers with a new snapshot.
 *
 * @module
 */
import { basename, dirname } from "../io/path.ts";
import { describeIoError, KvhError } from "../errors.ts";
import { chainOrder, listChainFiles } from "./chain_files.ts";

/** One file of the snapshot. */
export interface SnapshotFile {
  /** Path it had when the snapshot was taken. */
  path: string;
  /** The active file, open since the snapshot was taken; rotated files are opened when read. */
  file: Deno.FsFile | undefined;
  /** Bytes that belong to the snapshot: the active file's size when opened; rotated: all. */
  size: number;
  /** Whether this is the active file (the only one a writer still appends to). */
  active: boolean;
}

/** The files of a history as they were when verification started. */
export interface ChainSnapshot {
  /** Files in chain order; the active file last, unless it was missing. */
  files: SnapshotFile[];
  /** Path of the active file when it did not exist while rotated files did. */
  missingActive?: string;
}

/** How often a snapshot is retaken when the active file vanished in a rotation's window. */
const ATTEMPTS = 5;

/**
 * Takes the snapshot of a history: lists the rotated files, opens the active file, then lists
 * again. Files rotated in between (the writer renamed the active file after the first listing)
 * are taken too, up to and excluding the one that is the active file the snapshot holds (same
 * device and inode), so the chain read is the one committed at that moment.
 *
 * @param path Path of the active file.
 * @param activeOnly Only the given file.
 * @returns The files; close the snapshot with {@linkcode closeSnapshot}.
 * @throws {KvhError} When the active file (or, with `activeOnly`, the file) cannot be read at
 * all: missing with no rotated files, not a regular file, a symlink, or unreadable.
 */
export async function snapshotChain(path: string, activeOnly: boolean): Promise<ChainSnapshot> {
  if (activeOnly) return { files: [await openActive(path, true)] };
  const dir = dirname(path);
  const name = basename(path);
  for (let attempt = 1;; attempt++) {
    const before = (await listChainFiles(dir, name)).slice(0, -1);
    const files: SnapshotFile[] = before.map(rotatedEntry);
    const active = await openActive(path, before.length === 0);
    const after = (await listChainFiles(dir, name)).slice(0, -1);
    const seen = new Set(before);
    const added = after.filter((p) => !seen.has(p));
    if (active === undefined) {
      // A rotation by an older writer renamed the active file before it created the next one.
      if (added.length > 0 && attempt < ATTEMPTS) continue;
      return { files, missingActive: path };
    }
    try {
      const activeInfo = await active.file!.stat();
      const newest = before.at(-1);
      // Mid-rotation: the old file already has its rotated name and still the active one.
      const midRotation = newest !== undefined &&
        sameFile(await statOrNull(newest), activeInfo);
      // A listing taken while rotations create files can hold a later file and miss an earlier
      // one; the second listing began after the first ended, and rotated files are only ever
      // removed oldest first, so the two merged in chain order miss nothing up to the active
      // file held.
      const listed = new Set(before);
      const rotated: SnapshotFile[] = [];
      for (const path of chainOrder(name, [...before, ...after])) {
        if (!listed.has(path)) {
          const info = await statOrNull(path);
          if (info === null) continue;
          // The active file held is this rotated file now: later files came after the snapshot.
          if (sameFile(info, activeInfo)) break;
        }
        rotated.push(rotatedEntry(path));
        if (midRotation && path === newest) break;
      }
      files.splice(0, files.length, ...rotated);
      if (midRotation) {
        active.file!.close();
        return { files };
      }
    } catch (error) {
      active.file!.close();
      throw error;
    }
    files.push(active);
    return { files };
  }
}

function rotatedEntry(path: string): SnapshotFile {
  return { path, file: undefined, size: Infinity, active: false };
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw unreadable(path, error);
  }
}

/**
 * Opens a file of the snapshot for reading: the active file's handle, or a rotated file now.
 *
 * @returns The open file, or undefined when a rotated file is gone (removed by a prune).
 */
export async function openSnapshotFile(entry: SnapshotFile): Promise<Deno.FsFile | undefined> {
  if (entry.file !== undefined) return entry.file;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(entry.path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw unreadable(entry.path, error);
  }
  await sizeOf(file, entry.path);
  return file;
}

/**
 * Whether the log changed since the snapshot was taken: a file was added or removed, or a
 * writer has written to the active file. A listing may miss a file renamed while it runs, so
 * a snapshot of a changing log is only as good as a second look confirms.
 */
export async function changedSince(snapshot: ChainSnapshot): Promise<boolean> {
  const active = snapshot.files.find((entry) => entry.active);
  if (active !== undefined && await writtenSince(active)) return true;
  const path = active?.path ?? snapshot.missingActive;
  if (path === undefined) return false;
  const now = await listChainFiles(dirname(path), basename(path));
  const rotated = snapshot.files.filter((entry) => !entry.active).map((entry) => entry.path);
  return now.length - 1 !== rotated.length || rotated.some((p, i) => now[i] !== p) ||
    (snapshot.missingActive !== undefined && await Deno.lstat(path).then(() => true, () => false));
}

/** Closes every file of a snapshot. */
export function closeSnapshot(snapshot: ChainSnapshot): void {
  for (const { file } of snapshot.files) {
    try {
      file?.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }
}

/**
 * A reader over the snapshot's bytes of a file: a rotated file whole, the active file up to its
 * size when it was opened (what a writer appends later is not part of this verification).
 */
export function snapshotReader(entry: SnapshotFile, file: Deno.FsFile): {
  read(buffer: Uint8Array): Promise<number | null>;
  readSync(buffer: Uint8Array): number | null;
} {
  let left = entry.size;
  const counted = (n: number | null) => {
    if (n !== null) left -= n;
    return n;
  };
  return {
    async read(buffer: Uint8Array): Promise<number | null> {
      if (left <= 0) return null;
      return counted(await file.read(buffer.subarray(0, Math.min(buffer.length, left))));
    },
    readSync(buffer: Uint8Array): number | null {
      if (left <= 0) return null;
      return counted(file.readSync(buffer.subarray(0, Math.min(buffer.length, left))));
    },
  };
}

/**
 * Whether a writer has written past the snapshot's end of the active file since it was opened:
 * then an unterminated last line in the snapshot is a write in progress, not a torn tail.
 */
export async function writtenSince(entry: SnapshotFile): Promise<boolean> {
  try {
    // Grown, or cut back by a writer whose write failed: either way a writer is at work.
    const held = await entry.file!.stat();
    if (held.size !== entry.size) return true;
    // Rotated away: the writer finished this file and moved on.
    return !sameFile(await Deno.stat(entry.path), held);
  } catch {
    return false;
  }
}

/** Whether two stats describe the same file (device and inode). */
export function sameFile(a: Deno.FileInfo | null, b: Deno.FileInfo): boolean {
  return a !== null && a.ino !== null && a.ino === b.ino && a.dev === b.dev;
}

async function openActive(path: string, required: true): Promise<SnapshotFile>;
async function openActive(path: string, required: boolean): Promise<SnapshotFile | undefined>;
async function openActive(path: string, required: boolean): Promise<SnapshotFile | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (!required && error instanceof Deno.errors.NotFound) return undefined;
    throw unreadable(path, error);
  }
  if (info.isSymlink) {
    throw new KvhError("log_symlink", `Refusing to verify ${path}: it is a symlink`);
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (!required && error instanceof Deno.errors.NotFound) return undefined;
    throw unreadable(path, error);
  }
  return { path, file, size: await sizeOf(file, path), active: true };
}

async function sizeOf(file: Deno.FsFile, path: string): Promise<number> {
  const info = await file.stat();
  if (!info.isFile) {
    file.close();
    throw new KvhError("log_not_file", `Cannot verify ${path}: not a regular file`);
  }
  return info.size;
}

function unreadable(path: string, error: unknown): KvhError {
  return new KvhError("log_unreadable", `Cannot verify ${path}: ${describeIoError(error)}`, {
    cause: error,
  });
}
