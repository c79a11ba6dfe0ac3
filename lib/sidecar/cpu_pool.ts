/**
 * CPU pools: a file the engine maps (Python's `multiprocessing.shared_memory`, a HiCache host
 * pool) scrubbed with positioned writes and read back in full through kvh's own descriptor,
 * opened by the native pool helper when it is built (pool_files.ts says why).
 * Positioned I/O rather than a mapping, because a store past the end of a mapping of a file
 * that shrank is SIGBUS, which a Deno process cannot catch; a write or read past the end of a
 * file is an ordinary result the size check before each scrub turns into a quarantine.
 *
 * @module
 */
import { isAbsolute, relative, resolve, sep } from "../io/path.ts";
import type { ByteRange } from "./block_layout.ts";
import type { EnginePool, PoolScrubResult } from "./engine_pool.ts";
import { loadNativePoolFiles } from "./native_pool.ts";
import { DENO_POOL_FILES, type PoolFile, type PoolFiles, type PoolStat } from "./pool_files.ts";

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
  /**
   * The file operations.
   *
   * @default {defaultPoolFiles()}
   */
  files?: PoolFiles;
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

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== "" && !rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel);
}

async function sameFile(files: PoolFiles, info: PoolStat, path: string): Promise<boolean> {
  try {
    const other = await files.stat(path);
    return other.dev === info.dev && other.ino === info.ino;
  } catch {
    return false;
  }
}

/**
 * The file operations pools use by default: the native pool helper when it loads (it reaches
 * `/dev/shm` with kvh's named permissions), else Deno's file API.
 *
 * @returns The native helper's operations, or {@linkcode DENO_POOL_FILES}.
 */
export function defaultPoolFiles(): PoolFiles {
  return loadNativePoolFiles() ?? DENO_POOL_FILES;
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
  const files = options.files ?? defaultPoolFiles();
  let real: string;
  try {
    real = await files.realPath(path);
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
  let file: PoolFile;
  try {
    file = await files.open(real);
  } catch (error) {
    throw new PoolRefusedError(`Refusing pool ${path}: ${(error as Error).message}`);
  }
  try {
    const info = file.stat();
    const linked = await files.lstat(real);
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
      if (await sameFile(files, info, guarded)) {
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
  #file: PoolFile;
  #bytes: number;

  constructor(file: PoolFile, bytes: number, identity: string) {
    this.#file = file;
    this.#bytes = bytes;
    this.identity = identity;
  }

  scrub(ranges: readonly ByteRange[], doublePass: boolean): Promise<PoolScrubResult> {
    return this.#file.scrub(ranges, doublePass ? 2 : 1, this.#bytes);
  }

  close(): Promise<void> {
    this.#file.close();
    return Promise.resolve();
  }
}
