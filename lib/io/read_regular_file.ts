/**
 * Reading an input file that must be a regular file of bounded size, deciding on the opened
 * descriptor rather than the path: the file is opened with `O_NONBLOCK` (opening a FIFO for
 * reading would otherwise wait for a writer, forever), optionally `O_NOFOLLOW`, then `fstat`ed,
 * and only a regular file no larger than the cap is read. A FIFO, a device such as `/dev/zero`
 * or a directory is refused before a byte is read, and a file that grows while it is read is
 * refused rather than read without end.
 *
 * @module
 */
import fs from "node:fs";

/** Options of {@linkcode readRegularFileSync}. */
export interface ReadRegularFileOptions {
  /** Largest file accepted, in bytes. */
  maxBytes: number;
  /**
   * Refuse a symlink as the last path component (`O_NOFOLLOW`) instead of following it.
   *
   * @default {false}
   */
  noFollow?: boolean;
}

/** What {@linkcode readRegularFileSync} read, and the identity of the file it read it from. */
export interface RegularFileContent {
  /** The file's bytes. */
  bytes: Uint8Array<ArrayBuffer>;
  /** Inode number of the opened file. */
  ino: number;
  /** Modification time of the opened file, ms since the epoch (fractional). */
  mtimeMs: number;
}

/** Thrown for an open file that is not a regular file (FIFO, device, directory, socket). */
export class NotRegularFileError extends Error {
  /**
   * Creates the error.
   *
   * @param message Why, e.g. `Not a regular file`.
   */
  constructor(message = "Not a regular file") {
    super(message);
    this.name = "NotRegularFileError";
  }
}

/** Thrown with `noFollow` for a path whose last component is a symlink. */
export class SymlinkRefusedError extends NotRegularFileError {
  /** Creates the error. */
  constructor() {
    super("A symlink, which is never followed");
    this.name = "SymlinkRefusedError";
  }
}

/** Thrown for a file above the size cap; nothing of it was read. */
export class FileTooLargeError extends RangeError {
  /**
   * Creates the error.
   *
   * @param size The file's size in bytes (at least, when it grew while being read).
   * @param maxBytes The cap.
   */
  constructor(readonly size: number, readonly maxBytes: number) {
    super(`Too large: ${size} bytes, limit ${maxBytes}`);
    this.name = "FileTooLargeError";
  }
}

// Both are 0 where the platform lacks them (Windows has neither FIFOs nor O_NOFOLLOW).
const NONBLOCK = fs.constants.O_NONBLOCK ?? 0;
const NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/**
 * Turns a node:fs error (which carries a POSIX `code`) into the Deno error class callers test
 * for; anything else is returned as it is.
 *
 * @param error What a node:fs call threw.
 * @returns `Deno.errors.NotFound`, `Deno.errors.PermissionDenied`, a
 * {@linkcode SymlinkRefusedError}, or `error`.
 *
 * @example Usage
 * ```ts
 * import { fromNodeError } from "./read_regular_file.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(fromNodeError({ code: "ENOENT" }) instanceof Deno.errors.NotFound);
 * ```
 */
export function fromNodeError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return new Deno.errors.NotFound("Not found");
  if (code === "EACCES" || code === "EPERM") {
    return new Deno.errors.PermissionDenied("Permission denied");
  }
  if (code === "ELOOP") return new SymlinkRefusedError();
  return error;
}

/**
 * Reads a regular file of at most `maxBytes` bytes.
 *
 * @param path The file.
 * @param options The size cap and whether a symlink is refused.
 * @returns The bytes, the inode and the modification time of the file opened.
 * @throws {Deno.errors.NotFound} The path does not exist.
 * @throws {Deno.errors.PermissionDenied} The file is not readable.
 * @throws {NotRegularFileError} Not a regular file ({@linkcode SymlinkRefusedError} for a
 * symlink with `noFollow`).
 * @throws {FileTooLargeError} Larger than `maxBytes`.
 *
 * @example Usage
 * ```ts
 * import { NotRegularFileError, readRegularFileSync } from "./read_regular_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/m.json`, "{}");
 * assert.equal(readRegularFileSync(`${dir}/m.json`, { maxBytes: 1024 }).bytes.length, 2);
 * assert.throws(() => readRegularFileSync(dir, { maxBytes: 1024 }), NotRegularFileError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function readRegularFileSync(
  path: string,
  options: ReadRegularFileOptions,
): RegularFileContent {
  const { maxBytes, noFollow = false } = options;
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | NONBLOCK | (noFollow ? NOFOLLOW : 0));
  } catch (error) {
    throw fromNodeError(error);
  }
  try {
    const info = fs.fstatSync(fd);
    if (!info.isFile()) throw new NotRegularFileError();
    if (info.size > maxBytes) throw new FileTooLargeError(info.size, maxBytes);
    // One byte more than the cap: reading it means the file grew past the cap meanwhile.
    let buffer = new Uint8Array(Math.min(maxBytes + 1, Math.max(info.size + 1, 4096)));
    let length = 0;
    while (true) {
      if (length === buffer.length) {
        if (length > maxBytes) throw new FileTooLargeError(length, maxBytes);
        const grown = new Uint8Array(Math.min(maxBytes + 1, buffer.length * 2));
        grown.set(buffer);
        buffer = grown;
      }
      const read = fs.readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
    }
    if (length > maxBytes) throw new FileTooLargeError(length, maxBytes);
    return { bytes: buffer.slice(0, length), ino: info.ino, mtimeMs: info.mtimeMs };
  } catch (error) {
    throw fromNodeError(error);
  } finally {
    fs.closeSync(fd);
  }
}
