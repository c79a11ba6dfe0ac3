/**
 * The native CPU kernels: `libkvh_cpu.so` (ffi/native/kvh_cpu.c) zeroes and reads back large
 * buffers on every core, through non-blocking FFI calls so the event loop stays free (except a
 * fused zero + verify below `blockingBelow`, which is faster on the calling thread). Smaller
 * buffers keep the pure-TS kernels, which are faster while the bytes sit in cache. Without the
 * library or without the `ffi` permission the loader returns `undefined` and the CPU backend
 * runs on {@linkcode TS_CPU_KERNELS}.
 *
 * @module
 */
import {
  nativeLibraryCandidates,
  type NativeLibraryLocation,
  openNativeLibrary,
} from "../../ffi/native/open_library.ts";
import { type CpuKernels, TS_CPU_KERNELS } from "./cpu.ts";

/** File name of the library. */
export const NATIVE_CPU_LIBRARY_NAME = "libkvh_cpu.so";

/** `kvh_cpu_abi_version()` this binding was written against. */
const ABI_VERSION = 2;

const SYMBOLS = {
  kvh_cpu_abi_version: { parameters: [], result: "u32" },
  kvh_cpu_zero: {
    parameters: ["buffer", "u64", "u32"],
    result: "void",
    nonblocking: true,
  },
  kvh_cpu_count_nonzero: {
    parameters: ["buffer", "u64", "u32"],
    result: "u64",
    nonblocking: true,
  },
  kvh_cpu_zero_verify: {
    parameters: ["buffer", "u64", "u32"],
    result: "u64",
    nonblocking: true,
  },
  kvh_cpu_count_nonzero_here: {
    name: "kvh_cpu_count_nonzero",
    parameters: ["buffer", "u64", "u32"],
    result: "u64",
  },
  kvh_cpu_zero_verify_here: {
    name: "kvh_cpu_zero_verify",
    parameters: ["buffer", "u64", "u32"],
    result: "u64",
  },
} as const;

const MIB = 1024 * 1024;

/** Options of {@linkcode loadNativeCpuKernels}. */
export interface NativeCpuKernelsOptions extends NativeLibraryLocation {
  /**
   * Threads per call.
   *
   * @default {navigator.hardwareConcurrency, at most 8}
   */
  threads?: number;
  /**
   * Buffers of at least this many bytes go to the library's threads, which zero them with
   * non-temporal stores (no read-for-ownership of lines that would not stay in cache anyway).
   * Smaller ones are zeroed with `fill(0)`, which leaves them in cache, and read back by the
   * library on the calling thread (one call, no thread started).
   *
   * @default {16777216}
   */
  minBytes?: number;
  /**
   * A fused zero + verify of fewer bytes runs on the calling thread (the event loop waits, about
   * 5 ms at the default): the bytes the caller just wrote sit in its core's cache, and a
   * non-blocking call on another thread had to fetch them from there first, which took twice
   * as long at 64 MiB on the 2-core benchmark machine.
   *
   * @default {134217728}
   */
  blockingBelow?: number;
}

/**
 * Where the library is looked for, in order: `libraryPath` alone when given; otherwise beside
 * the executable, then `ffi/native/build/` of this checkout.
 *
 * @param options Explicit path and executable path.
 * @returns Candidate paths.
 *
 * @example Usage
 * ```ts
 * import { nativeCpuLibraryCandidates } from "./native.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(nativeCpuLibraryCandidates({ libraryPath: "/opt/libkvh_cpu.so" }), [
 *   "/opt/libkvh_cpu.so",
 * ]);
 * ```
 */
export function nativeCpuLibraryCandidates(options: NativeCpuKernelsOptions = {}): string[] {
  return nativeLibraryCandidates(NATIVE_CPU_LIBRARY_NAME, options);
}

/**
 * Loads the native kernels, or returns `undefined` when they cannot be used: no `ffi` or
 * `read` permission (checked first, so nothing prompts), no library, a library that fails to
 * load or has another ABI version. The library is never unloaded: the kernels live as long as
 * the process. With no options given the result is memoised, so a command can load them before
 * it revokes the `ffi` permission and use them after.
 *
 * @param options Library location, threads and size thresholds.
 * @returns Kernels named `native`, or `undefined`.
 *
 * @example Usage
 * ```ts
 * import { CpuSanitizer } from "./cpu.ts";
 * import { loadNativeCpuKernels } from "./native.ts";
 * import assert from "node:assert/strict";
 *
 * const kernels = loadNativeCpuKernels();
 * const sanitizer = new CpuSanitizer({ kernels });
 * assert.ok(["native", "ts"].includes(sanitizer.kernels));
 * ```
 */
export function loadNativeCpuKernels(
  options?: NativeCpuKernelsOptions,
): CpuKernels | undefined {
  if (options === undefined && loaded !== undefined) return loaded ?? undefined;
  const kernels = bind(options ?? {});
  if (options === undefined) loaded = kernels ?? null;
  return kernels;
}

/** The kernels of the default options, once loaded (`null`: they could not be). */
let loaded: CpuKernels | null | undefined;

function bind(options: NativeCpuKernelsOptions): CpuKernels | undefined {
  const library = openNativeLibrary(
    NATIVE_CPU_LIBRARY_NAME,
    SYMBOLS,
    { symbol: "kvh_cpu_abi_version", version: ABI_VERSION },
    options,
  );
  if (library === undefined) return undefined;
  const symbols = library.symbols;
  const threads = Math.max(1, Math.min(8, options.threads ?? navigator.hardwareConcurrency));
  const minBytes = options.minBytes ?? 16 * MIB;
  const blockingBelow = options.blockingBelow ?? 128 * MIB;
  return {
    name: "native",
    zero(bytes: Uint8Array): void | Promise<void> {
      if (bytes.length < minBytes) return TS_CPU_KERNELS.zero(bytes);
      return symbols.kvh_cpu_zero(bytes, BigInt(bytes.length), threads);
    },
    countNonZero(bytes: Uint8Array): number | Promise<number> {
      if (bytes.length < minBytes) {
        return Number(symbols.kvh_cpu_count_nonzero_here(bytes, BigInt(bytes.length), 1));
      }
      return symbols.kvh_cpu_count_nonzero(bytes, BigInt(bytes.length), threads).then(Number);
    },
    zeroVerify(bytes: Uint8Array): number | Promise<number> {
      if (bytes.length < minBytes) {
        return Number(symbols.kvh_cpu_zero_verify_here(bytes, BigInt(bytes.length), 1));
      }
      if (bytes.length < blockingBelow) {
        return Number(symbols.kvh_cpu_zero_verify_here(bytes, BigInt(bytes.length), threads));
      }
      return symbols.kvh_cpu_zero_verify(bytes, BigInt(bytes.length), threads).then(Number);
    },
  };
}
