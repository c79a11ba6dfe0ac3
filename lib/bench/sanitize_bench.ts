/**
 * `kvh sanitize-bench`: what a scrub costs on this device. Per buffer size it measures zeroing
 * and verification throughput and the per-buffer scrub + verify latency, beside the device's
 * own roofline measured in the same run, and checks every scrub it times really left zeros.
 * Pure given a sanitizer, a roofline probe and a clock.
 *
 * @module
 */
import { percentile } from "../metrics/percentile.ts";
import type { DeviceBuffer, DeviceKind, Sanitizer, VerifyMode } from "../sanitize/types.ts";
import {
  BENCH_PATTERN,
  type Clock,
  gbps,
  MONOTONIC,
  type Roofline,
  type RooflineProbe,
} from "./roofline.ts";
import { type BlockGeometry, formatSize } from "./sizes.ts";

/** A pool block, as the batched scrub takes it. */
export interface BenchBlock {
  /** First byte in the pool. */
  offset: number;
  /** Bytes in the block. */
  length: number;
}

/** A sanitizer that zeroes and verifies many blocks of one pool in one launch (CUDA). */
export interface BatchedSanitizer extends Sanitizer {
  /** Zeroes and verifies the blocks; returns the non-zero bytes left. */
  zeroVerifyBlocks(
    pool: DeviceBuffer,
    blocks: readonly BenchBlock[],
  ): Promise<{ nonZeroBytes: number }>;
}

/** Options of {@linkcode runSanitizeBench}. */
export interface SanitizeBenchOptions {
  /** Buffer sizes in bytes. */
  sizes: readonly number[];
  /**
   * Verification after each scrub; `none` still checks once per size, untimed.
   *
   * @default {"full"}
   */
  verify?: VerifyMode;
  /**
   * Scrub twice before verifying.
   *
   * @default {false}
   */
  doublePass?: boolean;
  /**
   * With `full` verification: read the buffer back in a second pass after all of it is zeroed,
   * even where the backend can verify each chunk while it is still in cache
   * (`Sanitizer.zeroVerify`, one pass over memory).
   *
   * @default {false}
   */
  secondPass?: boolean;
  /**
   * Timed scrubs per size; `undefined` scales with the size (many for small buffers, at
   * least 3 for large ones) so latency percentiles mean something.
   *
   * @default {undefined}
   */
  iterations?: number;
  /**
   * Last-level cache of the device in bytes (CPU L3, GPU L2): smaller sizes get a warning,
   * since they measure the cache rather than memory.
   *
   * @default {undefined}
   */
  cacheBytes?: number;
  /**
   * Small-block mode: a pool of `count` blocks of `blockBytes`, scrubbed one launch per block
   * and then in one batched launch (needs a {@linkcode BatchedSanitizer}).
   *
   * @default {undefined}
   */
  blocks?: BlockGeometry;
  /**
   * Progress messages (the CLI prints them on stderr).
   *
   * @default {() => {}}
   */
  onProgress?: (message: string) => void;
  /**
   * Time source in seconds.
   *
   * @default {MONOTONIC}
   */
  clock?: Clock;
}

/** A throughput and how close it comes to the roofline. */
export interface Throughput {
  /** GB/s (10^9 bytes per second), from the median run. */
  gbps: number;
  /** Percent of the matching roofline figure; `null` when the device has no such primitive. */
  pctOfRoofline: number | null;
}

/** Results of one buffer size. */
export interface SizeResult {
  /** Size as given, e.g. `64MiB`. */
  size: string;
  /** Bytes. */
  bytes: number;
  /** Timed scrubs. */
  iterations: number;
  /** Zeroing throughput (all passes), against the write roofline (or the copy's). */
  zero: Throughput;
  /** Verification throughput over the bytes read; `null` with `--verify none`. */
  verify: Throughput | null;
  /** Per-buffer scrub + verify latency, against the ideal write + read (or copy) time. */
  scrubVerify: { p50Ms: number; p95Ms: number; pctOfRoofline: number | null };
  /** The device's roofline at this size. */
  roofline: Roofline;
  /** Non-zero bytes found after the scrubs; anything but 0 means a scrub failed. */
  nonZeroAfterScrub: number;
}

/** Results of small-block mode. */
export interface BlocksResult {
  /** Blocks in the pool. */
  count: number;
  /** Bytes per block. */
  blockBytes: number;
  /** One zero + verify launch per block: total seconds for the pool. */
  perBlockSeconds: number;
  /** One batched launch for all blocks: seconds. */
  batchedSeconds: number;
  /** Zero + full verify of the pool as one buffer: seconds (the target is batched ≤ 2×). */
  wholePoolSeconds: number;
  /** batchedSeconds / wholePoolSeconds. */
  batchedVsWholePool: number;
  /** perBlockSeconds / batchedSeconds. */
  speedupOverPerBlock: number;
  /** Non-zero bytes found after the batched scrub. */
  nonZeroAfterScrub: number;
}

/** What {@linkcode runSanitizeBench} reports. */
export interface SanitizeBenchReport {
  /** Device benchmarked. */
  device: DeviceKind;
  /** Verification mode. */
  verify: VerifyMode;
  /** Whether each scrub was done twice. */
  doublePass: boolean;
  /**
   * How `full` verification read the buffer back: `fused` (each chunk verified right after it
   * was zeroed, while in cache: zero and verify are one pass, and both throughputs are that
   * pass's), `second-pass` (after the whole buffer was zeroed), or `null` without full
   * verification.
   */
  readBack: "fused" | "second-pass" | null;
  /** Per size. */
  results: SizeResult[];
  /** Small-block mode, when asked. */
  blocks?: BlocksResult;
  /** Caveats for the reader (sizes inside the cache). */
  warnings: string[];
  /** Whether every scrub left only zeros. */
  ok: boolean;
}

/**
 * Timed scrubs for a size when none is given: enough for stable percentiles on small buffers,
 * bounded for large ones (about 256 MiB of scrubbing per size, at least 3, at most 200).
 *
 * @param bytes Buffer size.
 * @returns Iterations.
 */
export function defaultIterations(bytes: number): number {
  return Math.max(3, Math.min(200, Math.round((256 << 20) / Math.max(1, bytes))));
}

/**
 * Runs the benchmark on `sanitizer`.
 *
 * @param sanitizer The backend under test.
 * @param roofline Its device's roofline probe (see `rooflineFor`).
 * @param options Sizes, verification, passes, iterations, cache size, block mode, progress.
 * @returns The report; `ok` is false when any timed scrub left a non-zero byte.
 *
 * @example Benchmark the CPU on a small buffer
 * ```ts
 * import { runSanitizeBench } from "./sanitize_bench.ts";
 * import { rooflineFor } from "./roofline.ts";
 * import { CpuSanitizer } from "../sanitize/cpu.ts";
 * import assert from "node:assert/strict";
 *
 * const sanitizer = new CpuSanitizer();
 * const report = await runSanitizeBench(sanitizer, rooflineFor(sanitizer), {
 *   sizes: [65536],
 *   iterations: 3,
 * });
 * assert.equal(report.ok, true);
 * assert.equal(report.results[0]!.size, "64KiB");
 * ```
 */
export async function runSanitizeBench(
  sanitizer: Sanitizer,
  roofline: RooflineProbe,
  options: SanitizeBenchOptions,
): Promise<SanitizeBenchReport> {
  const {
    sizes,
    verify = "full",
    doublePass = false,
    secondPass = false,
    cacheBytes,
    onProgress = () => {},
    clock = MONOTONIC,
  } = options;
  const warnings: string[] = [];
  const small = sizes.filter((bytes) => cacheBytes !== undefined && bytes < cacheBytes);
  if (small.length > 0) {
    warnings.push(
      `${small.map(formatSize).join(", ")} fit in the ${
        formatSize(cacheBytes!)
      } last-level cache: ` +
        "those rows measure the cache, not memory",
    );
  }
  const fused = verify === "full" && !doublePass && !secondPass &&
    sanitizer.zeroVerify !== undefined;
  const results: SizeResult[] = [];
  for (const bytes of sizes) {
    const iterations = options.iterations ?? defaultIterations(bytes);
    onProgress(`${sanitizer.device} ${formatSize(bytes)}: roofline`);
    const before = await roofline.measure(bytes, Math.min(iterations, 10));
    onProgress(`${sanitizer.device} ${formatSize(bytes)}: ${iterations} scrubs`);
    const passes = doublePass ? 2 : 1;
    const result = await benchSize(sanitizer, bytes, iterations, { verify, passes, fused, clock });
    // Measured again after the scrubs and the better figure kept: on a shared machine the
    // bandwidth drifts, and a roofline caught in a slow moment would flatter the sanitizer.
    onProgress(`${sanitizer.device} ${formatSize(bytes)}: roofline again`);
    const after = await roofline.measure(bytes, Math.min(iterations, 10));
    results.push(withRoofline(result, bestOf(before, after), { verify, passes }));
  }
  let blocks: BlocksResult | undefined;
  if (options.blocks !== undefined) {
    onProgress(
      `${sanitizer.device} ${options.blocks.count}x${
        formatSize(options.blocks.blockBytes)
      }: blocks`,
    );
    blocks = await benchBlocks(sanitizer, options.blocks, clock);
  }
  const ok = results.every((r) => r.nonZeroAfterScrub === 0) &&
    (blocks === undefined || blocks.nonZeroAfterScrub === 0);
  const readBack = verify !== "full" ? null : fused ? "fused" : "second-pass";
  return {
    device: sanitizer.device,
    verify,
    doublePass,
    readBack,
    results,
    blocks,
    warnings,
    ok,
  };
}

/** What one size's scrubs measured, before it is set against the roofline. */
interface Measured {
  bytes: number;
  iterations: number;
  zeroSeconds: number;
  verifySeconds: number;
  checkedBytes: number;
  sortedTotals: number[];
  nonZeroAfterScrub: number;
}

async function benchSize(
  sanitizer: Sanitizer,
  bytes: number,
  iterations: number,
  settings: { verify: VerifyMode; passes: number; fused: boolean; clock: Clock },
): Promise<Measured> {
  const { verify, passes, fused, clock } = settings;
  const buffer = await sanitizer.alloc(bytes);
  const zeroTimes: number[] = [];
  const verifyTimes: number[] = [];
  const totals: number[] = [];
  let checkedBytes = 0;
  let nonZeroAfterScrub = 0;
  try {
    for (let i = 0; i < iterations; i++) {
      await sanitizer.fill(buffer, BENCH_PATTERN);
      const start = clock();
      if (fused) {
        const result = await sanitizer.zeroVerify!(buffer);
        const end = clock();
        checkedBytes = result.checkedBytes;
        nonZeroAfterScrub += result.nonZeroBytes;
        zeroTimes.push(end - start);
        verifyTimes.push(end - start);
        totals.push(end - start);
        continue;
      }
      for (let pass = 0; pass < passes; pass++) await sanitizer.zero(buffer);
      const zeroed = clock();
      if (verify !== "none") {
        const result = await sanitizer.verify(buffer, { mode: verify, seed: i });
        checkedBytes = result.checkedBytes;
        nonZeroAfterScrub += result.nonZeroBytes;
      }
      const end = clock();
      zeroTimes.push(zeroed - start);
      verifyTimes.push(end - zeroed);
      totals.push(end - start);
    }
    if (verify === "none") nonZeroAfterScrub = (await sanitizer.verify(buffer)).nonZeroBytes;
  } finally {
    await sanitizer.free(buffer);
  }
  return {
    bytes,
    iterations,
    zeroSeconds: median(zeroTimes),
    verifySeconds: median(verifyTimes),
    checkedBytes,
    sortedTotals: totals.sort((x, y) => x - y),
    nonZeroAfterScrub,
  };
}

/** The larger figure of each primitive. */
function bestOf(a: Roofline, b: Roofline): Roofline {
  const max = (x?: number, y?: number) =>
    x === undefined ? y : y === undefined ? x : Math.max(x, y);
  const best: Roofline = { methods: a.methods };
  const write = max(a.writeGBps, b.writeGBps);
  const read = max(a.readGBps, b.readGBps);
  const copy = max(a.copyGBps, b.copyGBps);
  if (write !== undefined) best.writeGBps = write;
  if (read !== undefined) best.readGBps = read;
  if (copy !== undefined) best.copyGBps = copy;
  return best;
}

function withRoofline(
  m: Measured,
  roofline: Roofline,
  settings: { verify: VerifyMode; passes: number },
): SizeResult {
  const { verify, passes } = settings;
  const zeroGBps = gbps(m.bytes * passes, m.zeroSeconds);
  const verifyGBps = gbps(m.checkedBytes, m.verifySeconds);
  const writeRoof = roofline.writeGBps ?? roofline.copyGBps;
  const readRoof = roofline.readGBps ?? roofline.copyGBps;
  // Ideal scrub + verify: the same memory traffic (every byte written once per pass, the
  // checked bytes read once) at the roofline. A copy moves each byte twice (read + write).
  const written = m.bytes * passes;
  const read = verify === "none" ? 0 : m.checkedBytes;
  const ideal = roofline.copyGBps !== undefined && roofline.readGBps === undefined
    ? (written + read) / (2 * roofline.copyGBps * 1e9)
    : written / (writeRoof! * 1e9) + read / (readRoof! * 1e9);
  const p50 = percentile(m.sortedTotals, 50);
  return {
    size: formatSize(m.bytes),
    bytes: m.bytes,
    iterations: m.iterations,
    zero: { gbps: zeroGBps, pctOfRoofline: pct(zeroGBps, writeRoof) },
    verify: verify === "none"
      ? null
      : { gbps: verifyGBps, pctOfRoofline: pct(verifyGBps, readRoof) },
    scrubVerify: {
      p50Ms: p50 * 1000,
      p95Ms: percentile(m.sortedTotals, 95) * 1000,
      pctOfRoofline: !Number.isFinite(ideal) || p50 <= 0 ? null : (100 * ideal) / p50,
    },
    roofline,
    nonZeroAfterScrub: m.nonZeroAfterScrub,
  };
}

async function benchBlocks(
  sanitizer: Sanitizer,
  geometry: BlockGeometry,
  clock: Clock,
): Promise<BlocksResult> {
  if (!("zeroVerifyBlocks" in sanitizer)) {
    throw new TypeError(`Small-block mode needs a batched sanitizer: ${sanitizer.device} has none`);
  }
  const batched = sanitizer as BatchedSanitizer;
  const { count, blockBytes } = geometry;
  const pool = await batched.alloc(count * blockBytes);
  const blocks = Array.from(
    { length: count },
    (_, i) => ({ offset: i * blockBytes, length: blockBytes }),
  );
  try {
    await batched.fill(pool, BENCH_PATTERN);
    let start = clock();
    for (const block of blocks) await batched.zeroVerifyBlocks(pool, [block]);
    const perBlockSeconds = clock() - start;
    await batched.fill(pool, BENCH_PATTERN);
    start = clock();
    const { nonZeroBytes } = await batched.zeroVerifyBlocks(pool, blocks);
    const batchedSeconds = clock() - start;
    await batched.fill(pool, BENCH_PATTERN);
    start = clock();
    await batched.zero(pool);
    await batched.verify(pool);
    const wholePoolSeconds = clock() - start;
    return {
      count,
      blockBytes,
      perBlockSeconds,
      batchedSeconds,
      wholePoolSeconds,
      batchedVsWholePool: batchedSeconds / wholePoolSeconds,
      speedupOverPerBlock: perBlockSeconds / batchedSeconds,
      nonZeroAfterScrub: nonZeroBytes,
    };
  } finally {
    await batched.free(pool);
  }
}

function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

function pct(value: number, roof: number | undefined): number | null {
  return roof === undefined || !Number.isFinite(roof) || roof <= 0 ? null : (100 * value) / roof;
}
