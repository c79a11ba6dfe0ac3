/**
 * The device's own memory rooflines, measured in the same run as the sanitizer so "% of
 * roofline" compares like with like: CPU `Uint8Array.fill` (V8's memset) and a `memcmp` read
 * scan; on a GPU a device-to-device copy, plus `cudaMemset` on CUDA.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { DeviceBuffer, Sanitizer } from "../sanitize/types.ts";
import { fillPattern } from "../sanitize/cpu.ts";

const READ_BLOCK = 1 << 20;
/** Small buffers are timed in loops of at least this many bytes, above the clock's resolution. */
const MIN_TIMED_BYTES = 4 << 20;

/**
 * What every benchmarked buffer holds before it is scrubbed, and what the CPU write roofline
 * zeroes: a pattern no zeroing primitive can skip.
 */
export const BENCH_PATTERN: Uint8Array = new Uint8Array([0xa5, 0x5a, 0x3c, 0xc3, 0x01, 0xfe, 0x77]);

/** Bandwidths in GB/s (10^9 bytes per second) of the primitives a device offers. */
export interface Roofline {
  /** Plain write (memset) bandwidth, when the device has such a primitive. */
  writeGBps?: number;
  /** Plain read bandwidth, when the device has such a primitive. */
  readGBps?: number;
  /** Device-to-device copy: bytes copied per second (each byte is read once and written once). */
  copyGBps?: number;
  /** What each figure was measured with, e.g. `{ write: "Uint8Array.fill" }`. */
  methods: { write?: string; read?: string; copy?: string };
}

/** Measures a {@linkcode Roofline} at one buffer size. */
export interface RooflineProbe {
  /**
   * Measures the best of `iterations` runs (after a warm-up) of each primitive on `bytes`-sized buffers.
   *
   * @param bytes Buffer size.
   * @param iterations Runs per primitive.
   * @returns The bandwidths.
   */
  measure(bytes: number, iterations: number): Promise<Roofline>;
}

/** A sanitizer that can copy between its buffers (WebGPU, CUDA). */
export interface CopyingSanitizer extends Sanitizer {
  /** Copies `source` into `destination`, waiting for completion. */
  copy(source: DeviceBuffer, destination: DeviceBuffer): Promise<void>;
}

/** A sanitizer with a plain device memset (CUDA). */
export interface MemsetSanitizer extends CopyingSanitizer {
  /** Zeroes with an explicit method; `memset` is the roofline's write primitive. */
  zeroWith(buffer: DeviceBuffer, method: "memset"): Promise<void>;
}

/**
 * What each device's roofline is measured with, as `kvh sanitize-bench` names it in its help
 * and in its report (one source, so the two cannot disagree).
 */
export const ROOFLINE_METHODS = {
  cpu: { write: "Uint8Array.fill (memset)", read: "memcmp against a cached zero block" },
  cuda: { write: "cudaMemsetAsync", copy: "cudaMemcpyAsync D2D" },
  webgpu: { copy: "copyBufferToBuffer" },
} as const;

/**
 * How each backend zeroes, as the report names it: CPU by its kernels (`ts` or `native`),
 * CUDA by `--cuda-zero`, WebGPU with `clearBuffer`.
 */
export const ZERO_METHODS = {
  cpu: (kernels: string) => `${kernels} kernels`,
  cuda: { memset: "cudaMemsetAsync", kernel: "kvh 16-byte-store kernel" },
  webgpu: "clearBuffer",
} as const;

/** Seconds since an arbitrary origin; injected so tests control time. */
export type Clock = () => number;

/** The default clock: `performance.now()` in seconds. */
export const MONOTONIC: Clock = () => performance.now() / 1000;

/**
 * The CPU roofline: `Uint8Array.fill(0)` (a memset inside V8) for writes and `memcmp`
 * (`Buffer.compare`) against a zero block that stays in cache for reads: the fastest plain
 * read JavaScript has (`indexOf` and `includes` scan at a tenth of it here).
 *
 * @param clock Time source in seconds.
 * @returns The probe.
 *
 * @example Usage
 * ```ts
 * import { cpuRoofline } from "./roofline.ts";
 * import assert from "node:assert/strict";
 *
 * const roofline = await cpuRoofline().measure(1 << 16, 2);
 * assert.ok(roofline.writeGBps! > 0 && roofline.readGBps! > 0);
 * ```
 */
export function cpuRoofline(clock: Clock = MONOTONIC): RooflineProbe {
  return {
    measure(bytes: number, iterations: number): Promise<Roofline> {
      const bytesView = new Uint8Array(bytes);
      const repeats = Math.max(1, Math.ceil(MIN_TIMED_BYTES / bytes));
      // A buffer too large to time alone is zeroed as the scrubs find theirs, holding the
      // pattern: memset's non-temporal stores over a buffer that is already zero (what a loop of
      // fills times) skip the write-back of dirty lines that every real scrub pays, and ran 2.5x
      // faster than that at 64 MiB here.
      const prepare = repeats === 1 ? () => fillPattern(bytesView, BENCH_PATTERN) : undefined;
      const write = bestTime(iterations, clock, () => {
        for (let r = 0; r < repeats; r++) bytesView.fill(0);
      }, prepare) / repeats;
      const buffer = Buffer.from(bytesView.buffer);
      const zero = Buffer.alloc(Math.min(bytes, READ_BLOCK));
      let differing = 0;
      const read = bestTime(iterations, clock, () => {
        for (let r = 0; r < repeats; r++) {
          for (let offset = 0; offset < bytes; offset += zero.length) {
            const end = Math.min(offset + zero.length, bytes);
            differing += buffer.compare(zero, 0, end - offset, offset, end) === 0 ? 0 : 1;
          }
        }
      }) / repeats;
      if (differing !== 0) throw new Error("Roofline read scan found a byte that is not there");
      return Promise.resolve({
        writeGBps: gbps(bytes, write),
        readGBps: gbps(bytes, read),
        methods: { ...ROOFLINE_METHODS.cpu },
      });
    },
  };
}

/**
 * The GPU roofline: device-to-device copies between two buffers of the sanitizer, and, when the
 * sanitizer has one, its plain memset.
 *
 * @param sanitizer A sanitizer that can copy (WebGPU `copyBufferToBuffer`, CUDA `cudaMemcpy`).
 * @param options Names of the primitives for the report, and the clock.
 * @returns The probe.
 */
export function deviceRoofline(
  sanitizer: CopyingSanitizer,
  options: { copyMethod: string; writeMethod?: string; clock?: Clock },
): RooflineProbe {
  const clock = options.clock ?? MONOTONIC;
  return {
    async measure(bytes: number, iterations: number): Promise<Roofline> {
      const source = await sanitizer.alloc(bytes);
      const destination = await sanitizer.alloc(bytes);
      try {
        await sanitizer.fill(source, new Uint8Array([0x5a]));
        const copy = await bestTimeAsync(
          iterations,
          clock,
          () => sanitizer.copy(source, destination),
        );
        const roofline: Roofline = {
          copyGBps: gbps(bytes, copy),
          methods: { copy: options.copyMethod },
        };
        if (options.writeMethod !== undefined && "zeroWith" in sanitizer) {
          const memset = sanitizer as MemsetSanitizer;
          const write = await bestTimeAsync(
            iterations,
            clock,
            () => memset.zeroWith(destination, "memset"),
          );
          roofline.writeGBps = gbps(bytes, write);
          roofline.methods.write = options.writeMethod;
        }
        return roofline;
      } finally {
        await sanitizer.free(source);
        await sanitizer.free(destination);
      }
    },
  };
}

/**
 * The roofline probe of a sanitizer's device: CPU fill and read scan; CUDA copy and memset;
 * WebGPU copy.
 *
 * @param sanitizer The sanitizer being benchmarked.
 * @param clock Time source in seconds.
 * @returns The probe.
 *
 * @example Usage
 * ```ts
 * import { rooflineFor } from "./roofline.ts";
 * import { CpuSanitizer } from "../sanitize/cpu.ts";
 * import assert from "node:assert/strict";
 *
 * const roofline = await rooflineFor(new CpuSanitizer()).measure(4096, 1);
 * assert.equal(roofline.methods.write, "Uint8Array.fill (memset)");
 * ```
 */
export function rooflineFor(sanitizer: Sanitizer, clock: Clock = MONOTONIC): RooflineProbe {
  if (sanitizer.device === "cpu" || !("copy" in sanitizer)) return cpuRoofline(clock);
  const copying = sanitizer as CopyingSanitizer;
  return sanitizer.device === "cuda"
    ? deviceRoofline(copying, {
      copyMethod: ROOFLINE_METHODS.cuda.copy,
      writeMethod: ROOFLINE_METHODS.cuda.write,
      clock,
    })
    : deviceRoofline(copying, { copyMethod: ROOFLINE_METHODS.webgpu.copy, clock });
}

/** Bytes per second in GB/s. */
export function gbps(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / seconds / 1e9 : Infinity;
}

// The roofline is the best run after one untimed warm-up (page faults, lazy allocation): the
// peak the device reached in this run, which the sanitizer's median is compared against.
// `prepare` runs untimed before each run.
function bestTime(
  iterations: number,
  clock: Clock,
  run: () => void,
  prepare?: () => void,
): number {
  prepare?.();
  run();
  let best = Infinity;
  for (let i = 0; i < Math.max(3, iterations); i++) {
    prepare?.();
    const start = clock();
    run();
    best = Math.min(best, clock() - start);
  }
  return best;
}

async function bestTimeAsync(
  iterations: number,
  clock: Clock,
  run: () => Promise<void>,
): Promise<number> {
  await run();
  let best = Infinity;
  for (let i = 0; i < Math.max(3, iterations); i++) {
    const start = clock();
    await run();
    best = Math.min(best, clock() - start);
  }
  return best;
}
