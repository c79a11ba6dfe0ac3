/**
 * The CPU zeroization backend: buffers are plain `Uint8Array`s, zeroing runs at memory
 * bandwidth and verification reads bytes back (DESIGN.md §5).
 *
 * The byte loops are {@linkcode CpuKernels}, so a faster native helper (ffi/native/) can replace
 * the pure-TS ones, and tests can inject a broken zeroizer on purpose.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import { nodeBuiltin } from "../io/node_builtin.ts";
import { DEFAULT_SAMPLES, samplePositions } from "./sample_positions.ts";
import type { DeviceBuffer, Sanitizer, VerifyOptions, VerifyResult, ZeroOptions } from "./types.ts";

/**
 * The byte loops of the CPU backend. A kernel may finish later (a promise), as the native
 * ones do when they run on other threads; the bytes must not be touched until it settles.
 */
export interface CpuKernels {
  /** Name recorded in benchmarks and events, e.g. `ts` or `native`. */
  readonly name: string;
  /** Sets every byte of `bytes` to 0. */
  zero(bytes: Uint8Array): void | Promise<void>;
  /** Counts the bytes of `bytes` that are not 0. */
  countNonZero(bytes: Uint8Array): number | Promise<number>;
  /**
   * Zeroes `bytes` and counts those not 0 afterwards, reading each cache-sized chunk back right
   * after zeroing it (one pass over memory). Without it, {@linkcode CpuSanitizer.zeroVerify}
   * calls `zero` then `countNonZero`.
   */
  zeroVerify?(bytes: Uint8Array): number | Promise<number>;
}

/**
 * Chunk of the fused zero + verify: small enough to stay in a core's L2 cache between the
 * zeroing and the read-back (the same as ffi/native/kvh_cpu.c's FUSED_CHUNK).
 */
export const FUSED_CHUNK_BYTES = 256 * 1024;

// A zero block compared against with memcmp: Buffer.compare beats every pure-JS OR-reduction
// loop here by 2-3x (bench/results/tracer.md), because V8 does not vectorise typed-array loops.
const ZERO_BLOCK_BYTES = 1 << 20;
let zeroBlock: Buffer | undefined;
let nodeBuffer: typeof Buffer | undefined;

function countNonZeroSlow(bytes: Uint8Array, start: number, end: number): number {
  let count = 0;
  for (let i = start; i < end; i++) if (bytes[i] !== 0) count++;
  return count;
}

/**
 * The pure-TS kernels: `Uint8Array.fill(0)` to zero, `Buffer.compare` against a zero block to
 * verify (an exact byte count only for blocks that differ).
 *
 * @example Usage
 * ```ts
 * import { TS_CPU_KERNELS } from "./cpu.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([1, 0, 2]);
 * assert.equal(TS_CPU_KERNELS.countNonZero(bytes), 2);
 * TS_CPU_KERNELS.zero(bytes);
 * assert.equal(TS_CPU_KERNELS.countNonZero(bytes), 0);
 * ```
 */
export const TS_CPU_KERNELS: CpuKernels = {
  name: "ts",
  zero(bytes: Uint8Array): void {
    bytes.fill(0);
  },
  countNonZero(bytes: Uint8Array): number {
    // node:buffer loads on first use: with libkvh_cpu loaded this kernel never runs.
    nodeBuffer ??= nodeBuiltin("node:buffer").Buffer;
    zeroBlock ??= nodeBuffer.alloc(ZERO_BLOCK_BYTES);
    const view = nodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let count = 0;
    for (let offset = 0; offset < view.length; offset += ZERO_BLOCK_BYTES) {
      const end = Math.min(offset + ZERO_BLOCK_BYTES, view.length);
      if (view.compare(zeroBlock, 0, end - offset, offset, end) !== 0) {
        count += countNonZeroSlow(bytes, offset, end);
      }
    }
    return count;
  },
  zeroVerify(bytes: Uint8Array): number {
    let count = 0;
    for (let offset = 0; offset < bytes.length; offset += FUSED_CHUNK_BYTES) {
      // fill() is a memset: for a chunk this size, stores that stay in cache.
      const chunk = bytes.subarray(offset, offset + FUSED_CHUNK_BYTES);
      chunk.fill(0);
      count += TS_CPU_KERNELS.countNonZero(chunk) as number;
    }
    return count;
  },
};

/**
 * Writes `pattern` over `bytes`, repeated (the last copy cut short).
 *
 * @param bytes Where to write.
 * @param pattern A non-empty pattern.
 *
 * @example Usage
 * ```ts
 * import { fillPattern } from "./cpu.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array(5);
 * fillPattern(bytes, new Uint8Array([1, 2]));
 * assert.deepEqual(bytes, new Uint8Array([1, 2, 1, 2, 1]));
 * ```
 */
export function fillPattern(bytes: Uint8Array, pattern: Uint8Array): void {
  bytes.set(pattern.subarray(0, Math.min(pattern.length, bytes.length)));
  // Doubling copies: log2(n / pattern) memmoves instead of n / pattern small sets.
  for (let filled = pattern.length; filled < bytes.length; filled *= 2) {
    bytes.copyWithin(filled, 0, Math.min(filled, bytes.length - filled));
  }
}

/** Options of {@linkcode CpuSanitizer}. */
export interface CpuSanitizerOptions {
  /**
   * Byte loops to zero and verify with (a native helper, or a broken one in tests).
   *
   * @default {TS_CPU_KERNELS}
   */
  kernels?: CpuKernels;
}

const BUFFERS = new WeakMap<DeviceBuffer, Uint8Array>();

class CpuBuffer implements DeviceBuffer {
  readonly device = "cpu" as const;
  readonly byteLength: number;
  constructor(byteLength: number) {
    this.byteLength = byteLength;
  }
}

/**
 * The CPU {@linkcode Sanitizer}: buffers live in process memory, and zeroing and verification
 * are done when their promise resolves (so {@linkcode CpuSanitizer.wait} has nothing to wait
 * for).
 *
 * @example Usage
 * ```ts
 * import { CpuSanitizer } from "./cpu.ts";
 * import assert from "node:assert/strict";
 *
 * const sanitizer = new CpuSanitizer();
 * const buffer = await sanitizer.alloc(4096);
 * await sanitizer.fill(buffer, new TextEncoder().encode("tenant-a"));
 * assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, 4096);
 * await sanitizer.zero(buffer);
 * assert.deepEqual(await sanitizer.verify(buffer), { checkedBytes: 4096, nonZeroBytes: 0 });
 * await sanitizer.close();
 * ```
 */
export class CpuSanitizer implements Sanitizer {
  /** Always `cpu`. */
  readonly device = "cpu" as const;
  #kernels: CpuKernels;
  #live = new Set<DeviceBuffer>();

  /**
   * Creates a CPU backend.
   *
   * @param options Kernels to use.
   */
  constructor(options: CpuSanitizerOptions = {}) {
    this.#kernels = options.kernels ?? TS_CPU_KERNELS;
  }

  /** Name of the kernels in use (`ts`, `native`, …). */
  get kernels(): string {
    return this.#kernels.name;
  }

  /**
   * Allocates a zero-filled buffer.
   *
   * @param byteLength Size in bytes: a non-negative safe integer.
   * @returns The buffer.
   */
  alloc(byteLength: number): Promise<DeviceBuffer> {
    if (!Number.isSafeInteger(byteLength) || byteLength < 0) {
      return Promise.reject(
        new RangeError(`Invalid byteLength: expected a non-negative integer, got ${byteLength}`),
      );
    }
    const buffer = new CpuBuffer(byteLength);
    BUFFERS.set(buffer, new Uint8Array(byteLength));
    this.#live.add(buffer);
    return Promise.resolve(buffer);
  }

  /**
   * The buffer's memory, for the code that writes the KV cache into it (and for tests).
   *
   * @param buffer A live buffer of this backend.
   * @returns A view of the buffer's bytes (not a copy).
   */
  bytes(buffer: DeviceBuffer): Uint8Array {
    const bytes = BUFFERS.get(buffer);
    if (bytes === undefined || !this.#live.has(buffer)) {
      throw new TypeError("Cannot use buffer: it was freed or belongs to another backend");
    }
    return bytes;
  }

  /**
   * Fills the buffer by repeating `pattern`.
   *
   * @param buffer A live buffer of this backend.
   * @param pattern Bytes to repeat; must not be empty.
   */
  fill(buffer: DeviceBuffer, pattern: Uint8Array): Promise<void> {
    try {
      const bytes = this.bytes(buffer);
      if (pattern.length === 0) throw new RangeError("Cannot fill buffer: the pattern is empty");
      if (bytes.length === 0) return Promise.resolve();
      fillPattern(bytes, pattern);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Zeroes every byte; done when the promise resolves, whatever `async` says.
   *
   * @param buffer A live buffer of this backend.
   * @param _options Ignored on the CPU: the work is done when the promise resolves.
   */
  async zero(buffer: DeviceBuffer, _options?: ZeroOptions): Promise<void> {
    await this.#kernels.zero(this.bytes(buffer));
  }

  /**
   * Reads bytes back and counts those that are not zero.
   *
   * @param buffer A live buffer of this backend.
   * @param options `full` (every byte) or `sample` (positions from `samples` and `seed`).
   * @returns Bytes read and non-zero bytes among them.
   */
  async verify(buffer: DeviceBuffer, options: VerifyOptions = {}): Promise<VerifyResult> {
    const bytes = this.bytes(buffer);
    const { mode = "full", samples = DEFAULT_SAMPLES, seed = 0 } = options;
    if (mode === "full") {
      return { checkedBytes: bytes.length, nonZeroBytes: await this.#kernels.countNonZero(bytes) };
    }
    const positions = samplePositions(bytes.length, { samples, seed });
    let nonZeroBytes = 0;
    for (const position of positions) if (bytes[position] !== 0) nonZeroBytes++;
    return { checkedBytes: positions.length, nonZeroBytes };
  }

  /**
   * Zeroes every byte and reads every byte back, chunk by chunk while each chunk is still in
   * cache, so a buffer larger than the last-level cache crosses memory about once instead of
   * twice (zero, then a second pass to verify). Same result as {@linkcode CpuSanitizer.zero}
   * then a `full` {@linkcode CpuSanitizer.verify}; use those two for a second pass after the
   * whole buffer is written.
   *
   * @param buffer A live buffer of this backend.
   * @returns Bytes read and non-zero bytes among them.
   */
  async zeroVerify(buffer: DeviceBuffer): Promise<VerifyResult> {
    const bytes = this.bytes(buffer);
    const kernels = this.#kernels;
    if (kernels.zeroVerify !== undefined) {
      return { checkedBytes: bytes.length, nonZeroBytes: await kernels.zeroVerify(bytes) };
    }
    await kernels.zero(bytes);
    return { checkedBytes: bytes.length, nonZeroBytes: await kernels.countNonZero(bytes) };
  }

  /** Nothing is ever queued on the CPU. */
  wait(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Releases the buffer; later use of it throws a `TypeError`.
   *
   * @param buffer A buffer of this backend.
   */
  free(buffer: DeviceBuffer): Promise<void> {
    this.#live.delete(buffer);
    BUFFERS.delete(buffer);
    return Promise.resolve();
  }

  /** Releases every buffer still allocated. */
  close(): Promise<void> {
    for (const buffer of this.#live) BUFFERS.delete(buffer);
    this.#live.clear();
    return Promise.resolve();
  }
}
