/**
 * The Deno FFI binding of `libkvh_pool.so` (ffi/native/kvh_pool.c, built by
 * ffi/native/build.sh): the file work of CPU pools in native code. Deno grants files under
 * `/dev` (where `/dev/shm` pools live) only to a process run with every permission, but does
 * not path-check FFI calls, so through this library `kvh trace --listen` serves `/dev/shm`
 * pools with kvh's named permissions. Optional: without the library (or the `ffi` permission)
 * {@linkcode loadNativePoolFiles} returns `undefined` and pools go through `DENO_POOL_FILES`.
 *
 * @module
 */
import { type NativeLibraryLocation, openNativeLibrary } from "../../ffi/native/open_library.ts";
import type { ByteRange } from "./block_layout.ts";
import type { PoolScrubResult } from "./engine_pool.ts";
import {
  type PoolFile,
  type PoolFiles,
  poolRemoved,
  poolShorterThanRegistered,
  poolShrankDuringScrub,
  type PoolStat,
} from "./pool_files.ts";

/** File name of the library. */
export const NATIVE_POOL_LIBRARY_NAME = "libkvh_pool.so";

const ABI_VERSION = 3;
/** Outcomes of one scrub of kvh_pool_scrub_batch besides 0 and -errno (kvh_pool.c). */
const SHORT = 1;
const GONE = 2;
const SMALL = 3;
const PATH_MAX = 4096;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

// Synchronous calls, as the Deno.FsFile fallback: a release is acknowledged only after its
// scrub returned, and no descriptor can be closed while a scrub on it runs on another thread.
// A scrub is queued and run in a microtask, with the others queued in the same turn of the
// event loop (the releases of one batch of request lines), in one kvh_pool_scrub_batch call.
const SYMBOLS = {
  kvh_pool_abi_version: { parameters: [], result: "u32" },
  kvh_pool_realpath: { parameters: ["buffer", "buffer", "u32"], result: "i32" },
  kvh_pool_stat: { parameters: ["buffer", "u32", "buffer"], result: "i32" },
  kvh_pool_open: { parameters: ["buffer"], result: "i32" },
  kvh_pool_fstat: { parameters: ["i32", "buffer"], result: "i32" },
  kvh_pool_close: { parameters: ["i32"], result: "i32" },
  // Tables of doubles holding integers below 2^53 (kvh_pool.c says why).
  kvh_pool_scrub_batch: { parameters: ["buffer", "u32", "buffer", "buffer"], result: "i32" },
  kvh_pool_strerror: { parameters: ["i32", "buffer", "u32"], result: "void" },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function cString(path: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(`${path}\0`);
  // A NUL inside the path would silently name another file in C.
  if (bytes.indexOf(0) !== bytes.length - 1) {
    throw new Deno.errors.InvalidData(`Path contains a NUL byte: ${JSON.stringify(path)}`);
  }
  return bytes;
}

function toStat(out: BigUint64Array): PoolStat {
  const mode = Number(out[4]!) & S_IFMT;
  return {
    dev: out[0]!,
    ino: out[1]!,
    nlink: Number(out[2]!),
    size: Number(out[3]!),
    isFile: mode === S_IFREG,
    isDirectory: mode === S_IFDIR,
  };
}

// The Deno error class of the same errno, so callers (describeIoError) treat both paths alike.
const ERROR_CLASSES: Record<number, new (message: string) => Error> = {
  1: Deno.errors.PermissionDenied,
  2: Deno.errors.NotFound,
  13: Deno.errors.PermissionDenied,
  20: Deno.errors.NotADirectory,
  21: Deno.errors.IsADirectory,
  40: Deno.errors.FilesystemLoop,
};

function osError(symbols: Symbols, errno: number, op: string, path: string): Error {
  const text = new Uint8Array(256);
  symbols.kvh_pool_strerror(errno, text, text.length);
  const message = `${decoder.decode(text.subarray(0, text.indexOf(0)))} (os error ${errno})`;
  return new (ERROR_CLASSES[errno] ?? Error)(`${message}: ${op} '${path}'`);
}

interface QueuedScrub {
  file: NativePoolFile;
  ranges: readonly ByteRange[];
  passes: number;
  bytes: number;
  done: (result: PoolScrubResult) => void;
  failed: (error: Error) => void;
}

// The scrubs queued in one turn of the event loop, run in one native call. The call is
// synchronous, so its tables are kept from one batch to the next (grown when a batch needs more).
class ScrubQueue {
  #symbols: Symbols;
  #queued: QueuedScrub[] = [];
  #jobs = new Float64Array(5 * 16);
  #ranges = new Float64Array(2 * 16);
  #out = new Float64Array(4 * 16);

  constructor(symbols: Symbols) {
    this.#symbols = symbols;
  }

  add(scrub: QueuedScrub): void {
    if (this.#queued.push(scrub) === 1) queueMicrotask(() => this.#run());
  }

  #run(): void {
    const queued = this.#queued;
    this.#queued = [];
    try {
      this.#scrub(queued);
    } catch (error) {
      // Never thrown by the scrubs themselves (each has its outcome); should building the
      // tables fail, every scrub fails with it (its blocks are quarantined) instead of an
      // uncaught error in a microtask ending the daemon. A settled scrub ignores the call.
      for (const q of queued) q.failed(error as Error);
    }
  }

  #scrub(queued: QueuedScrub[]): void {
    let rangeCount = 0;
    for (const q of queued) rangeCount += q.ranges.length;
    if (this.#jobs.length < 5 * queued.length) {
      this.#jobs = new Float64Array(5 * queued.length);
      this.#out = new Float64Array(4 * queued.length);
    }
    if (this.#ranges.length < 2 * rangeCount) this.#ranges = new Float64Array(2 * rangeCount);
    const jobs = this.#jobs;
    const ranges = this.#ranges;
    const out = this.#out;
    let at = 0;
    for (let i = 0; i < queued.length; i++) {
      const q = queued[i]!;
      // The descriptor now, not when the scrub was queued: one closed since is -1 (EBADF),
      // never a number reused by another file.
      jobs[5 * i] = q.file.fd;
      jobs[5 * i + 1] = q.bytes;
      jobs[5 * i + 2] = at;
      jobs[5 * i + 3] = q.ranges.length;
      jobs[5 * i + 4] = q.passes;
      for (const range of q.ranges) {
        ranges[2 * at] = range.offset;
        ranges[2 * at + 1] = range.length;
        at++;
      }
    }
    const rc = this.#symbols.kvh_pool_scrub_batch(jobs, queued.length, ranges, out);
    for (let i = 0; i < queued.length; i++) {
      const q = queued[i]!;
      const status = rc < 0 ? rc : out[4 * i]!;
      if (status === 0) {
        q.done({ checkedBytes: out[4 * i + 1]!, nonZeroBytes: out[4 * i + 2]! });
      } else if (status === GONE) {
        q.failed(poolRemoved());
      } else if (status === SMALL) {
        q.failed(poolShorterThanRegistered(out[4 * i + 3]!, q.bytes));
      } else if (status === SHORT) {
        q.failed(poolShrankDuringScrub());
      } else {
        q.failed(osError(this.#symbols, -status, "scrub", q.file.path));
      }
    }
  }
}

function tableValue(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

class NativePoolFile implements PoolFile {
  #symbols: Symbols;
  #queue: ScrubQueue;
  #fd: number;
  readonly path: string;

  constructor(symbols: Symbols, queue: ScrubQueue, fd: number, path: string) {
    this.#symbols = symbols;
    this.#queue = queue;
    this.#fd = fd;
    this.path = path;
  }

  get fd(): number {
    return this.#fd;
  }

  stat(): PoolStat {
    const out = new BigUint64Array(5);
    const rc = this.#symbols.kvh_pool_fstat(this.#fd, out);
    if (rc < 0) throw osError(this.#symbols, -rc, "fstat", this.path);
    return toStat(out);
  }

  scrub(ranges: readonly ByteRange[], passes: number, bytes: number): Promise<PoolScrubResult> {
    // The native tables are doubles, exact for integers up to 2^53 only; C would truncate
    // anything else into some other range.
    for (const range of ranges) {
      if (!tableValue(range.offset) || !tableValue(range.length)) {
        return Promise.reject(
          new RangeError(`Invalid range ${range.offset}+${range.length}: not a safe integer`),
        );
      }
    }
    if (!tableValue(bytes) || !tableValue(passes)) {
      return Promise.reject(new RangeError(`Invalid scrub of ${bytes} bytes, ${passes} passes`));
    }
    return new Promise((done, failed) =>
      this.#queue.add({ file: this, ranges, passes, bytes, done, failed })
    );
  }

  // -1 afterwards: a later call fails with EBADF instead of reaching whatever file the
  // descriptor number was reused for.
  close(): void {
    if (this.#fd < 0) return;
    this.#symbols.kvh_pool_close(this.#fd);
    this.#fd = -1;
  }
}

// The calls are synchronous; the interface is asynchronous for the Deno.FsFile fallback.
function settled<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

function nativePoolFiles(symbols: Symbols): PoolFiles {
  const queue = new ScrubQueue(symbols);
  const stat = (path: string, follow: boolean): PoolStat => {
    const out = new BigUint64Array(5);
    const rc = symbols.kvh_pool_stat(cString(path), follow ? 1 : 0, out);
    if (rc < 0) throw osError(symbols, -rc, follow ? "stat" : "lstat", path);
    return toStat(out);
  };
  return {
    name: "native",
    realPath: (path) =>
      settled(() => {
        const out = new Uint8Array(PATH_MAX + 1);
        const n = symbols.kvh_pool_realpath(cString(path), out, out.length);
        if (n < 0) throw osError(symbols, -n, "realpath", path);
        return decoder.decode(out.subarray(0, n));
      }),
    stat: (path) => settled(() => stat(path, true)),
    lstat: (path) => settled(() => stat(path, false)),
    open: (path) =>
      settled(() => {
        const fd = symbols.kvh_pool_open(cString(path));
        if (fd < 0) throw osError(symbols, -fd, "open", path);
        return new NativePoolFile(symbols, queue, fd, path);
      }),
  };
}

let loaded: PoolFiles | null | undefined;

/**
 * Loads the native pool helper, or returns `undefined` when it cannot be used (see
 * `openNativeLibrary` in ffi/native/open_library.ts). With no location given the result is
 * memoised, so `kvh trace --listen` can load it before it revokes the `ffi` permission and use
 * it after.
 *
 * @param location Where to look; by default beside the executable, then `ffi/native/build/`.
 * @returns The pool file operations named `native`, or `undefined`.
 *
 * @example Usage
 * ```ts
 * import { loadNativePoolFiles } from "./native_pool.ts";
 * import assert from "node:assert/strict";
 *
 * const files = loadNativePoolFiles();
 * if (files !== undefined) {
 *   const dir = await Deno.makeTempDir();
 *   assert.equal(await files.realPath(dir), await Deno.realPath(dir));
 *   assert.ok((await files.stat(dir)).isDirectory);
 *   await Deno.remove(dir);
 * }
 * ```
 */
export function loadNativePoolFiles(location?: NativeLibraryLocation): PoolFiles | undefined {
  if (location === undefined && loaded !== undefined) return loaded ?? undefined;
  const library = openNativeLibrary(
    NATIVE_POOL_LIBRARY_NAME,
    SYMBOLS,
    { symbol: "kvh_pool_abi_version", version: ABI_VERSION },
    location,
  );
  const files = library === undefined ? undefined : nativePoolFiles(library.symbols);
  if (location === undefined) loaded = files ?? null;
  return files;
}
