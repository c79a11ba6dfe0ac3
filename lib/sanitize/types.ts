/**
 * The `Sanitizer` interface every zeroization backend implements (CPU, CUDA, WebGPU), so the
 * tracer and `kvh sanitize-bench` never care where the KV buffer lives.
 *
 * @module
 */

/** Where a buffer lives. */
export type DeviceKind = "cpu" | "cuda" | "webgpu";

/** A buffer owned by a sanitizer backend. Opaque to callers besides its size. */
export interface DeviceBuffer {
  /** Backend that owns the buffer. */
  readonly device: DeviceKind;
  /** Size in bytes. */
  readonly byteLength: number;
}

/** How a scrub is verified (DESIGN.md §5). */
export type VerifyMode = "full" | "sample" | "none";

/** Options of {@linkcode Sanitizer.verify}. */
export interface VerifyOptions {
  /**
   * `full` reads every byte; `sample` reads `samples` bytes at positions derived from `seed`.
   *
   * @default {"full"}
   */
  mode?: Exclude<VerifyMode, "none">;
  /**
   * Number of sampled positions in `sample` mode.
   *
   * @default {4096}
   */
  samples?: number;
  /**
   * Seed of the sampled positions (the tracer derives it from the handle, so a given handle is
   * always checked at the same positions).
   *
   * @default {0}
   */
  seed?: number;
}

/** Result of a verification: how many bytes were read and how many were not zero. */
export interface VerifyResult {
  /** Bytes read. */
  checkedBytes: number;
  /** Bytes read that were not zero. */
  nonZeroBytes: number;
}

/** Options of {@linkcode Sanitizer.zero}. */
export interface ZeroOptions {
  /**
   * Return once the zeroing is queued; {@linkcode Sanitizer.wait} is the sync point. Coverage
   * may only be attested after the wait.
   *
   * @default {false}
   */
  async?: boolean;
}

/** A zeroization backend. */
export interface Sanitizer {
  /** The device this backend scrubs. */
  readonly device: DeviceKind;
  /** Allocates a buffer of `byteLength` bytes. */
  alloc(byteLength: number): Promise<DeviceBuffer>;
  /** Fills the buffer by repeating `pattern` (tenant-derived bytes, canaries in tests). */
  fill(buffer: DeviceBuffer, pattern: Uint8Array): Promise<void>;
  /** Zeroes every byte of the buffer. */
  zero(buffer: DeviceBuffer, options?: ZeroOptions): Promise<void>;
  /** Counts non-zero bytes (all of them, or a deterministic sample). */
  verify(buffer: DeviceBuffer, options?: VerifyOptions): Promise<VerifyResult>;
  /**
   * Zeroes the buffer and reads every byte back in one fused pass (each cache-sized chunk
   * verified while it is still in cache), where the backend can; the same result as `zero`
   * then a `full` `verify`.
   */
  zeroVerify?(buffer: DeviceBuffer): Promise<VerifyResult>;
  /** Waits until every queued operation on the buffer's queue or stream completed. */
  wait(): Promise<void>;
  /** Releases the buffer. */
  free(buffer: DeviceBuffer): Promise<void>;
  /** Releases the backend (streams, devices). */
  close(): Promise<void>;
}
