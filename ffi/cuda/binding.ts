/**
 * The Deno FFI binding of `libkvh_cuda.so` (ffi/cuda/kvh_cuda.cu): the only `Deno.dlopen` of
 * CUDA in kvh. Symbols are typed one to one with the C ABI; calls that can block the thread
 * (stream and event synchronisation) are `nonblocking`, so the event loop stays free while
 * the GPU works.
 *
 * @module
 */
import { dirname, join } from "../../lib/io/path.ts";
import { KvhError, type KvhErrorCode } from "../../lib/errors.ts";

/** File name of the library. */
export const CUDA_LIBRARY_NAME = "libkvh_cuda.so";

/** `kvh_abi_version()` this binding was written against. */
export const CUDA_ABI_VERSION = 2;

/** Bytes of `struct KvhDeviceInfo` in kvh_cuda.cu. */
export const DEVICE_INFO_BYTES = 288;

/** cudaErrorInsufficientDriver: no driver, or one older than the runtime. */
export const CUDA_ERROR_INSUFFICIENT_DRIVER = 35;
/** cudaErrorNoDevice. */
export const CUDA_ERROR_NO_DEVICE = 100;
/** cudaErrorNotReady: an event or stream still has work pending. */
export const CUDA_ERROR_NOT_READY = 600;

/** The library's own error codes (kvh_cuda.cu, `KVH_ERR_*`). */
export const KVH_CUDA_ERRORS = {
  invalidArgument: 10001,
  blocksUnsorted: 10002,
  blocksOverlap: 10003,
  blocksOutOfRange: 10004,
  blocksEmpty: 10005,
} as const;

/** The C ABI of kvh_cuda.cu, as `Deno.dlopen` symbol definitions. */
export const CUDA_SYMBOLS = {
  kvh_abi_version: { parameters: [], result: "i32" },
  kvh_runtime_version: { parameters: ["buffer"], result: "i32" },
  kvh_driver_version: { parameters: ["buffer"], result: "i32" },
  kvh_device_count: { parameters: ["buffer"], result: "i32" },
  kvh_set_device: { parameters: ["i32"], result: "i32" },
  kvh_device_info: { parameters: ["i32", "buffer"], result: "i32" },
  kvh_error_name: { parameters: ["i32"], result: "pointer" },
  kvh_error_string: { parameters: ["i32"], result: "pointer" },
  kvh_get_last_error: { parameters: [], result: "i32" },
  kvh_stream_create: { parameters: ["buffer"], result: "i32" },
  kvh_stream_destroy: { parameters: ["pointer"], result: "i32" },
  kvh_stream_synchronize: { parameters: ["pointer"], result: "i32", nonblocking: true },
  kvh_event_create: { parameters: ["buffer", "i32"], result: "i32" },
  kvh_event_destroy: { parameters: ["pointer"], result: "i32" },
  kvh_event_record: { parameters: ["pointer", "pointer"], result: "i32" },
  kvh_event_query: { parameters: ["pointer"], result: "i32" },
  kvh_event_synchronize: { parameters: ["pointer"], result: "i32", nonblocking: true },
  kvh_event_elapsed_ms: { parameters: ["buffer", "pointer", "pointer"], result: "i32" },
  kvh_malloc: { parameters: ["buffer", "u64"], result: "i32" },
  kvh_free: { parameters: ["pointer"], result: "i32" },
  kvh_host_alloc: { parameters: ["buffer", "u64"], result: "i32" },
  kvh_host_free: { parameters: ["pointer"], result: "i32" },
  kvh_memcpy_htod: { parameters: ["pointer", "u64", "buffer", "u64"], result: "i32" },
  kvh_memcpy_dtoh: { parameters: ["buffer", "pointer", "u64", "u64"], result: "i32" },
  kvh_memcpy_dtod_async: { parameters: ["pointer", "pointer", "u64", "pointer"], result: "i32" },
  kvh_memset_async: { parameters: ["pointer", "u64", "i32", "pointer"], result: "i32" },
  kvh_zero_kernel_async: { parameters: ["pointer", "u64", "pointer"], result: "i32" },
  kvh_fill_pattern_async: {
    parameters: ["pointer", "u64", "buffer", "u64", "pointer"],
    result: "i32",
  },
  kvh_count_nonzero_async: {
    parameters: ["pointer", "u64", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  kvh_count_nonzero_sampled_async: {
    parameters: ["pointer", "u64", "u64", "u64", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  kvh_sample_positions: { parameters: ["u64", "u64", "u64", "buffer"], result: "i32" },
  kvh_validate_blocks: { parameters: ["u64", "buffer", "u32", "buffer"], result: "i32" },
  kvh_zero_verify_blocks_async: {
    parameters: ["pointer", "u64", "buffer", "u32", "pointer", "pointer", "pointer", "buffer"],
    result: "i32",
  },
  kvh_device_uuid: { parameters: ["i32", "buffer"], result: "i32" },
  kvh_ipc_open: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  kvh_ipc_close: { parameters: ["pointer"], result: "i32" },
  kvh_ipc_get_handle: { parameters: ["buffer", "pointer"], result: "i32" },
  kvh_mem_get_info: { parameters: ["buffer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's symbols. */
export type CudaSymbols = Deno.DynamicLibrary<typeof CUDA_SYMBOLS>["symbols"];

/** Options of {@linkcode cudaLibraryCandidates} and {@linkcode loadCudaLibrary}. */
export interface CudaLibraryOptions {
  /**
   * Explicit path of the library (the CLI passes `KVH_CUDA_LIB`). When given, it is the only
   * candidate.
   *
   * @default {undefined}
   */
  libraryPath?: string;
  /**
   * Path of the running executable; the library next to it is the first default candidate.
   *
   * @default {Deno.execPath()}
   */
  execPath?: string;
}

/**
 * Where the library is looked for, in order: `libraryPath` alone when given; otherwise next to
 * the executable (a `deno compile`d kvh ships it there), then `ffi/cuda/build/` of this
 * checkout.
 *
 * @param options Explicit path and executable path.
 * @returns Candidate paths.
 */
export function cudaLibraryCandidates(options: CudaLibraryOptions = {}): string[] {
  if (options.libraryPath !== undefined) return [options.libraryPath];
  const beside = join(dirname(options.execPath ?? Deno.execPath()), CUDA_LIBRARY_NAME);
  // Not node:url's fileURLToPath: loading node:url costs every kvh command's start.
  const built = decodeURIComponent(new URL(`build/${CUDA_LIBRARY_NAME}`, import.meta.url).pathname);
  return [beside, built];
}

/** A loaded library with its symbols and the path it came from. */
export interface CudaLibrary {
  /** Path the library was loaded from. */
  path: string;
  /** Typed symbols. */
  symbols: CudaSymbols;
  /** Unloads the library. */
  close(): void;
}

/**
 * Loads the first candidate that exists. A missing file, a library that fails to load or an
 * ABI mismatch is a `device_unavailable` {@linkcode KvhError}.
 *
 * @param options Explicit path and executable path.
 * @returns The loaded library.
 */
export function loadCudaLibrary(options: CudaLibraryOptions = {}): CudaLibrary {
  const candidates = cudaLibraryCandidates(options);
  const path = candidates.find(exists);
  if (path === undefined) {
    throw new KvhError(
      "device_unavailable",
      `CUDA unavailable: ${CUDA_LIBRARY_NAME} not found (looked in ${
        candidates.join(", ")
      }; build it with deno task build:cuda or set KVH_CUDA_LIB)`,
    );
  }
  let library: Deno.DynamicLibrary<typeof CUDA_SYMBOLS>;
  try {
    library = Deno.dlopen(path, CUDA_SYMBOLS);
  } catch (error) {
    throw new KvhError(
      "device_unavailable",
      `CUDA unavailable: cannot load ${path}: ${
        error instanceof Error ? error.message.split("\n")[0] : String(error)
      }`,
      { cause: error },
    );
  }
  const abi = library.symbols.kvh_abi_version();
  if (abi !== CUDA_ABI_VERSION) {
    library.close();
    throw new KvhError(
      "device_unavailable",
      `CUDA unavailable: ${path} has ABI version ${abi}, expected ${CUDA_ABI_VERSION} (rebuild it)`,
    );
  }
  return { path, symbols: library.symbols, close: () => library.close() };
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * `cudaErrorNoDevice (100): no CUDA-capable device is detected` for a status code.
 *
 * @param symbols The library's symbols.
 * @param code A status returned by a `kvh_*` function.
 * @returns Name, code and description in one line.
 */
export function describeCudaError(symbols: CudaSymbols, code: number): string {
  const name = cString(symbols.kvh_error_name(code)) || "unknown error";
  const text = cString(symbols.kvh_error_string(code));
  return text ? `${name} (${code}): ${text}` : `${name} (${code})`;
}

function cString(pointer: Deno.PointerValue): string {
  return pointer === null ? "" : Deno.UnsafePointerView.getCString(pointer);
}

/** Error thrown for a failed CUDA call; `status` is the library's return code. */
export class CudaError extends KvhError {
  /** The `kvh_*` function's return code. */
  readonly status: number;

  /**
   * Creates the error.
   *
   * @param code kvh error code, e.g. `device_error` or `device_unavailable`.
   * @param status The library's return code.
   * @param message One-line message.
   */
  constructor(code: KvhErrorCode, status: number, message: string) {
    super(code, message);
    this.name = "CudaError";
    this.status = status;
  }
}

/**
 * Throws a {@linkcode CudaError} naming `what` when `status` is not 0. Driver-level absence
 * (codes 35 and 100) becomes `device_unavailable`; everything else is `device_error`.
 *
 * @param symbols The library's symbols.
 * @param status The return code.
 * @param what What was attempted, for the message.
 */
export function check(symbols: CudaSymbols, status: number, what: string): void {
  if (status === 0) return;
  const absent = status === CUDA_ERROR_INSUFFICIENT_DRIVER || status === CUDA_ERROR_NO_DEVICE;
  const prefix = absent ? "CUDA unavailable" : `CUDA ${what} failed`;
  const hint = status === CUDA_ERROR_INSUFFICIENT_DRIVER
    ? " (no NVIDIA driver loaded, or one older than the CUDA runtime linked into the library)"
    : "";
  throw new CudaError(
    absent ? "device_unavailable" : "device_error",
    status,
    `${prefix}: ${describeCudaError(symbols, status)}${hint}`,
  );
}

/** Reads the pointer an out-parameter call wrote into an 8-byte buffer. */
export function outPointer(out: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(out[0]!);
}
