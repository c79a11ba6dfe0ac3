/**
 * CPU pools: a file the engine maps (Python's `multiprocessing.shared_memory`, a HiCache host
 * pool) scrubbed with positioned writes and read back in full through kvh's own descriptor.
 * Positioned I/O rather than a mapping, because a store past the end of a mapping of a file
 * that shrank is SIGBUS, which a Deno process cannot catch; a write or read past the end of a
 * file is an ordinary result the size check before each scrub turns into a quarantine.
 *
 * @module
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import { TS_CPU_KERNELS } from "../sanitize/cpu.ts";
import type { ByteRange } from "./block_layout.ts";
import { type EnginePool, type PoolScrubResult, PoolUnavailableError } from "./engine_pool.ts";

/** Options of {@linkcode openCpuPool}. */
export interface CpuPoolOptions {
  /** Directories a pool must resolve under, already resolved (no symlink). */
  poolDirs: readonly string[];
  /**
   * Files a pool must never be (the log's chain, its lock, the metrics files), compared by
   * device and inode, so a hard link is caught too. Missing ones are skipped.
   */
  protectedFiles?: readonly string[];
  /** Directories no pool may be inside (the log directory). */
  protectedDirs?: readonly string[];
}

/** Why a pool path was refused. */
export class PoolRefusedError extends Error {
  /**
   * Creates the error.
   *
   * @param message Which path and why.
   */
  constructor(message: string) {
    super(message);
    this.name = "PoolRefusedError";
  }
}

const CHUNK_BYTES = 1 << 20;
const ZEROS = new Uint8Array(CHUNK_BYTES);
const scratch = new Uint8Array(CHUNK_BYTES);

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== "" && !rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel);
}

async function sameFile(info: Deno.FileInfo, path: string): Promise<boolean> {
  try {
    const other = await Deno.stat(path);
    return other.dev === info.dev && other.ino === info.ino;
  } catch {
    return false;
  }
}

/**
 * Opens an engine's pool file for scrubbing after checking where it is: an absolute path that
 * resolves to itself (no symlink on the way), under one of the pool directories, a regular
 * file of at least `bytes`, not inside a protected directory and not one of the protected
 * files.
 *
 * @param path The pool path the engine gave.
 * @param bytes Bytes the engine registers.
 * @param options Allowed and protected locations.
 * @returns The pool.
 * @throws {PoolRefusedError} When any check fails; nothing was written.
 */
export async function openCpuPool(
  path: string,
  bytes: number,
  options: CpuPoolOptions,
): Promise<EnginePool> {
  if (!isAbsolute(path)) throw new PoolRefusedError(`Refusing pool ${path}: not an absolute path`);
  let real: string;
  try {
    real = await Deno.realPath(path);
  } catch (error) {
    throw new PoolRefusedError(`Refusing pool ${path}: ${(error as Error).message}`);
  }
  if (real !== resolve(path)) {
    throw new PoolRefusedError(`Refusing pool ${path}: it resolves through a symlink to ${real}`);
  }
  if (!options.poolDirs.some((dir) => inside(dir, real))) {
    throw new PoolRefusedError(
      `Refusing pool ${path}: not under an allowed --pool-dir (${options.poolDirs.join(", ")})`,
    );
  }
  if ((options.protectedDirs ?? []).some((dir) => dir === real || inside(dir, real))) {
    throw new PoolRefusedError(`Refusing pool ${path}: it is inside the log directory`);
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(real, { read: true, write: true });
  } catch (error) {
    throw new PoolRefusedError(`Refusing pool ${path}: ${(error as Error).message}`);
  }
  try {
    const info = await file.stat();
    const linked = await Deno.lstat(real);
    if (linked.dev !== info.dev || linked.ino !== info.ino) {
      throw new PoolRefusedError(`Refusing pool ${path}: it was replaced while being opened`);
    }
    if (!info.isFile) throw new PoolRefusedError(`Refusing pool ${path}: not a regular file`);
    if (info.size < bytes) {
      throw new PoolRefusedError(
        `Refusing pool ${path}: ${info.size} bytes, shorter than the ${bytes} registered`,
      );
    }
    for (const guarded of options.protectedFiles ?? []) {
      if (await sameFile(info, guarded)) {
        throw new PoolRefusedError(`Refusing pool ${path}: it is the evidence file ${guarded}`);
      }
    }
    return new CpuPool(file, bytes, `cpu:${info.dev}:${info.ino}`);
  } catch (error) {
    file.close();
    throw error;
  }
}

class CpuPool implements EnginePool {
  readonly device = "cpu" as const;
  readonly identity: string;
  #file: Deno.FsFile;
  #bytes: number;

  constructor(file: Deno.FsFile, bytes: number, identity: string) {
    this.#file = file;
    this.#bytes = bytes;
    this.identity = identity;
  }

  // Synchronous on purpose: the seek and the write of one range cannot interleave with another
  // request's, and a release is acknowledged only after this returns.
  scrub(ranges: readonly ByteRange[], doublePass: boolean): Promise<PoolScrubResult> {
    const info = this.#file.statSync();
    if (info.nlink === 0) {
      return Promise.reject(
        new PoolUnavailableError("pool_gone", "The pool file was removed by the engine"),
      );
    }
    if (info.size < this.#bytes) {
      return Promise.reject(
        new PoolUnavailableError(
          "pool_short",
          `The pool file shrank to ${info.size} bytes, ${this.#bytes} are registered`,
        ),
      );
    }
    for (let pass = doublePass ? 2 : 1; pass > 0; pass--) {
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
    return Promise.resolve({ checkedBytes, nonZeroBytes });
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

  // A read that ends early means the file shrank between the size check and here.
  #readAll(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length;) {
      const n = this.#file.readSync(bytes.subarray(done));
      if (n === null || n === 0) {
        throw new PoolUnavailableError("pool_short", "The pool file shrank during the scrub");
      }
      done += n;
    }
  }

  close(): Promise<void> {
    this.#file.close();
    return Promise.resolve();
  }
}
