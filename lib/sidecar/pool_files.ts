/**
 * The file operations behind CPU pools, in two implementations: the native pool helper
 * (`libkvh_pool.so`, lib/sidecar/native_pool.ts), which reaches `/dev/shm` with kvh's named
 * permissions, and {@linkcode DENO_POOL_FILES}, the fallback through `Deno.FsFile` when the
 * library is absent, which Deno lets touch files under `/dev` only with every permission.
 *
 * @module
 */
import { TS_CPU_KERNELS } from "../sanitize/cpu.ts";
import type { ByteRange } from "./block_layout.ts";
import { type PoolScrubResult, PoolUnavailableError } from "./engine_pool.ts";

/** What the pool checks need of a file's metadata. */
export interface PoolStat {
  /** Device number. */
  dev: bigint;
  /** Inode number. */
  ino: bigint;
  /** Hard links; 0 once the file was removed. */
  nlink: number;
  /** Size in bytes. */
  size: number;
  /** A regular file. */
  isFile: boolean;
  /** A directory. */
  isDirectory: boolean;
}

/** An open pool file. */
export interface PoolFile {
  /** Metadata of the open file. */
  stat(): PoolStat;
  /**
   * Checks that the file is still linked and at least `bytes` long, then zeroes every range
   * `passes` times and reads every byte back. The native helper runs the scrubs asked for in
   * one turn of the event loop (the releases of one batch of request lines) in one call.
   *
   * @param ranges Ranges inside the registered pool.
   * @param passes Zeroing passes before the read-back.
   * @param bytes The registered size the file must still have.
   * @returns Bytes read back, and how many of them were not zero.
   * @throws {PoolUnavailableError} `pool_gone` for a removed file, `pool_short` for a file
   * shorter than `bytes` or one that shrank under the read-back.
   */
  scrub(ranges: readonly ByteRange[], passes: number, bytes: number): Promise<PoolScrubResult>;
  /** Closes kvh's descriptor. */
  close(): void;
}

/** The file operations of CPU pools; paths are absolute. */
export interface PoolFiles {
  /** `native` (libkvh_pool.so) or `deno` (the fallback). */
  readonly name: "native" | "deno";
  /** The path with every symlink resolved. */
  realPath(path: string): Promise<string>;
  /** Metadata, following a symlink. */
  stat(path: string): Promise<PoolStat>;
  /** Metadata of the path itself. */
  lstat(path: string): Promise<PoolStat>;
  /** Opens for reading and writing. */
  open(path: string): Promise<PoolFile>;
}

/** The `pool_short` error of a read-back that ended early: the file shrank under the scrub. */
export function poolShrankDuringScrub(): PoolUnavailableError {
  return new PoolUnavailableError("pool_short", "The pool file shrank during the scrub");
}

/** The `pool_gone` error of a pool file the engine removed. */
export function poolRemoved(): PoolUnavailableError {
  return new PoolUnavailableError("pool_gone", "The pool file was removed by the engine");
}

/** The `pool_short` error of a pool file found shorter than registered before a scrub. */
export function poolShorterThanRegistered(size: number, bytes: number): PoolUnavailableError {
  return new PoolUnavailableError(
    "pool_short",
    `The pool file shrank to ${size} bytes, ${bytes} are registered`,
  );
}

const CHUNK_BYTES = 1 << 20;
const ZEROS = new Uint8Array(CHUNK_BYTES);
const scratch = new Uint8Array(CHUNK_BYTES);

function fromFileInfo(info: Deno.FileInfo): PoolStat {
  return {
    dev: BigInt(info.dev),
    ino: BigInt(info.ino ?? 0),
    nlink: info.nlink ?? 1,
    size: info.size,
    isFile: info.isFile,
    isDirectory: info.isDirectory,
  };
}

class DenoPoolFile implements PoolFile {
  #file: Deno.FsFile;

  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  stat(): PoolStat {
    return fromFileInfo(this.#file.statSync());
  }

  scrub(ranges: readonly ByteRange[], passes: number, bytes: number): Promise<PoolScrubResult> {
    try {
      return Promise.resolve(this.#scrub(ranges, passes, bytes));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // Synchronous on purpose: the seek and the write of one range cannot interleave with another
  // request's, and the size check stays right before the first write.
  #scrub(ranges: readonly ByteRange[], passes: number, bytes: number): PoolScrubResult {
    const info = this.stat();
    if (info.nlink === 0) throw poolRemoved();
    if (info.size < bytes) throw poolShorterThanRegistered(info.size, bytes);
    for (let pass = passes; pass > 0; pass--) {
      for (const range of ranges) this.#each(range, (n) => this.#writeAll(ZEROS.subarray(0, n)));
    }
    let checkedBytes = 0;
    let nonZeroBytes = 0;
    for (const range of ranges) {
      this.#each(range, (n) => {
        const view = scratch.subarray(0, n);
        this.#readAll(view);
        checkedBytes += n;
        nonZeroBytes += TS_CPU_KERNELS.countNonZero(view) as number;
      });
    }
    return { checkedBytes, nonZeroBytes };
  }

  #each(range: ByteRange, step: (n: number) => void): void {
    for (let done = 0; done < range.length;) {
      const n = Math.min(CHUNK_BYTES, range.length - done);
      this.#file.seekSync(range.offset + done, Deno.SeekMode.Start);
      step(n);
      done += n;
    }
  }

  #writeAll(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length;) done += this.#file.writeSync(bytes.subarray(done));
  }

  #readAll(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length;) {
      const n = this.#file.readSync(bytes.subarray(done));
      if (n === null || n === 0) throw poolShrankDuringScrub();
      done += n;
    }
  }

  close(): void {
    this.#file.close();
  }
}

/**
 * The fallback through Deno's file API. Deno refuses every file under `/dev` to a process not
 * run with every permission (`NotCapable`).
 *
 * @example Usage
 * ```ts
 * import { DENO_POOL_FILES } from "./pool_files.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * assert.ok((await DENO_POOL_FILES.stat(dir)).isDirectory);
 * await Deno.remove(dir);
 * ```
 */
export const DENO_POOL_FILES: PoolFiles = {
  name: "deno",
  realPath: (path) => Deno.realPath(path),
  stat: async (path) => fromFileInfo(await Deno.stat(path)),
  lstat: async (path) => fromFileInfo(await Deno.lstat(path)),
  open: async (path) => new DenoPoolFile(await Deno.open(path, { read: true, write: true })),
};
