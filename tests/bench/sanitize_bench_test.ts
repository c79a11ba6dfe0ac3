import assert from "node:assert/strict";
import { KvhError } from "../../lib/errors.ts";
import {
  cpuRoofline,
  deviceRoofline,
  gbps,
  type Roofline,
  rooflineFor,
} from "../../lib/bench/roofline.ts";
import {
  type BatchedSanitizer,
  type BenchBlock,
  defaultIterations,
  runSanitizeBench,
} from "../../lib/bench/sanitize_bench.ts";
import { formatSize, parseBlocks, parseSize, parseSizes } from "../../lib/bench/sizes.ts";
import { type CpuKernels, CpuSanitizer, TS_CPU_KERNELS } from "../../lib/sanitize/cpu.ts";
import type { DeviceBuffer, Sanitizer } from "../../lib/sanitize/types.ts";

/** A clock that advances one millisecond per reading: deterministic timings. */
function tickingClock(): () => number {
  let now = 0;
  return () => (now += 0.001);
}

function assertClose(actual: number | null | undefined, expected: number): void {
  assert.ok(
    actual !== null && actual !== undefined && Math.abs(actual - expected) < 1e-9,
    `${actual} != ${expected}`,
  );
}

const FIXED_ROOFLINE: Roofline = { writeGBps: 10, readGBps: 5, methods: { write: "w", read: "r" } };
const fixedProbe = { measure: () => Promise.resolve(structuredClone(FIXED_ROOFLINE)) };

Deno.test("parseSize() accepts binary and decimal units and rejects anything else", () => {
  assert.equal(parseSize("4KiB"), 4096);
  assert.equal(parseSize("64mib"), 64 << 20);
  assert.equal(parseSize("1G"), 1 << 30);
  assert.equal(parseSize("2TB"), 2e12);
  assert.equal(parseSize("512"), 512);
  assert.equal(parseSize("0KiB"), undefined);
  assert.equal(parseSize("1.5MiB"), undefined);
  assert.equal(parseSize("4XB"), undefined);
  assert.equal(parseSize("99999999999TiB"), undefined);
});

Deno.test("parseSizes() names the bad entry in a flag_invalid error", () => {
  assert.deepEqual(parseSizes("4KiB, 1MiB"), [4096, 1 << 20]);
  assert.throws(() => parseSizes("4KiB,,1MiB"), (error: unknown) => {
    assert.ok(error instanceof KvhError);
    assert.equal(error.code, "flag_invalid");
    assert.equal(error.message, 'Invalid --sizes: "" is not a size (e.g. 4KiB, 64MiB, 1GiB)');
    return true;
  });
});

Deno.test("parseBlocks() reads COUNTxSIZE and rejects other forms", () => {
  assert.deepEqual(parseBlocks("16384x64KiB"), { count: 16384, blockBytes: 65536 });
  assert.deepEqual(parseBlocks("2 X 1k"), { count: 2, blockBytes: 1024 });
  for (const bad of ["64KiB", "0x1KiB", "3xlots", "99999999999x1KiB"]) {
    assert.throws(() => parseBlocks(bad), /^KvhError: Invalid --blocks: /);
  }
});

Deno.test("formatSize() prints exact binary units, else one decimal", () => {
  assert.equal(formatSize(1 << 30), "1GiB");
  assert.equal(formatSize(3 * 1024 ** 4), "3TiB");
  assert.equal(formatSize(1536 * 1024), "1536KiB");
  assert.equal(formatSize(1536 * 1024 + 1), "1.5 MiB");
  assert.equal(formatSize(1500), "1.5 KiB");
  assert.equal(formatSize(12), "12B");
});

Deno.test("defaultIterations() runs many scrubs of small buffers and at least 3 of large ones", () => {
  assert.equal(defaultIterations(4096), 200);
  assert.equal(defaultIterations(64 << 20), 4);
  assert.equal(defaultIterations(1 << 30), 3);
});

Deno.test("runSanitizeBench() reports throughput against the roofline from the clock", async () => {
  const report = await runSanitizeBench(new CpuSanitizer(), fixedProbe, {
    sizes: [1_000_000],
    iterations: 5,
    secondPass: true,
    clock: tickingClock(),
  });
  const [row] = report.results;
  assert.equal(report.ok, true);
  assert.equal(report.readBack, "second-pass");
  assertClose(row!.iterations, 5);
  // Every timed step lasts exactly one tick: 1 MB per ms is 1 GB/s.
  assertClose(row!.zero.gbps, 1);
  assertClose(row!.zero.pctOfRoofline, 10);
  assertClose(row!.verify!.gbps, 1);
  assertClose(row!.verify!.pctOfRoofline, 20);
  assertClose(row!.scrubVerify.p50Ms, 2);
  // Ideal: 1 MB at 10 GB/s + 1 MB at 5 GB/s = 0.3 ms of the 2 ms measured.
  assertClose(row!.scrubVerify.pctOfRoofline, 15);
  assertClose(row!.nonZeroAfterScrub, 0);
});

Deno.test("runSanitizeBench() times the fused zero + verify as one pass by default", async () => {
  const report = await runSanitizeBench(new CpuSanitizer(), fixedProbe, {
    sizes: [1_000_000],
    iterations: 5,
    clock: tickingClock(),
  });
  const [row] = report.results;
  assert.equal(report.readBack, "fused");
  assert.equal(report.ok, true);
  // One timed step per scrub: zero and verify are the same 1 MB/ms pass.
  assertClose(row!.scrubVerify.p50Ms, 1);
  assertClose(row!.zero.gbps, 1);
  assertClose(row!.verify!.gbps, 1);
  assert.equal(row!.nonZeroAfterScrub, 0);
});

Deno.test("runSanitizeBench() reads back in a second pass without zeroVerify or with doublePass", async () => {
  const cpu = new CpuSanitizer();
  // The same backend without the fused operation (as the GPU backends are today).
  const plain: Sanitizer = {
    device: cpu.device,
    alloc: (n) => cpu.alloc(n),
    fill: (buffer, pattern) => cpu.fill(buffer, pattern),
    zero: (buffer, options) => cpu.zero(buffer, options),
    verify: (buffer, options) => cpu.verify(buffer, options),
    wait: () => cpu.wait(),
    free: (buffer) => cpu.free(buffer),
    close: () => cpu.close(),
  };
  const options = { sizes: [4096], iterations: 2 };
  assert.equal((await runSanitizeBench(plain, fixedProbe, options)).readBack, "second-pass");
  const doubled = await runSanitizeBench(cpu, fixedProbe, { ...options, doublePass: true });
  assert.equal(doubled.readBack, "second-pass");
  const sampled = await runSanitizeBench(cpu, fixedProbe, { ...options, verify: "sample" });
  assert.equal(sampled.readBack, null);
});

Deno.test("runSanitizeBench() counts both passes with doublePass and skips timing verify with none", async () => {
  const report = await runSanitizeBench(new CpuSanitizer(), fixedProbe, {
    sizes: [1_000_000],
    iterations: 3,
    doublePass: true,
    verify: "none",
    clock: tickingClock(),
  });
  const [row] = report.results;
  assertClose(row!.zero.gbps, 2); // both passes (2 MB) inside one tick
  assert.equal(row!.verify, null);
  assert.equal(report.doublePass, true);
  assert.equal(report.ok, true);
});

Deno.test("runSanitizeBench() in sample mode reports the bytes it read", async () => {
  const report = await runSanitizeBench(new CpuSanitizer(), fixedProbe, {
    sizes: [1 << 20],
    iterations: 2,
    verify: "sample",
    clock: tickingClock(),
  });
  assertClose(report.results[0]!.verify!.gbps, gbps(4096, 0.001));
});

Deno.test("runSanitizeBench() fails the report when a broken scrub leaves bytes", async () => {
  const broken: CpuKernels = {
    name: "skips-last-byte",
    zero: (bytes) => {
      bytes.subarray(0, bytes.length - 1).fill(0);
    },
    countNonZero: TS_CPU_KERNELS.countNonZero,
  };
  for (const verify of ["full", "none"] as const) {
    const report = await runSanitizeBench(new CpuSanitizer({ kernels: broken }), fixedProbe, {
      sizes: [4096],
      iterations: 3,
      verify,
    });
    assert.equal(report.ok, false, verify);
    assert.ok(report.results[0]!.nonZeroAfterScrub > 0);
  }
});

Deno.test("runSanitizeBench() warns about sizes inside the last-level cache and reports progress", async () => {
  const progress: string[] = [];
  const report = await runSanitizeBench(new CpuSanitizer(), fixedProbe, {
    sizes: [4096, 1 << 20],
    iterations: 1,
    cacheBytes: 32 << 20,
    onProgress: (message) => progress.push(message),
  });
  assert.deepEqual(report.warnings, [
    "4KiB, 1MiB fit in the 32MiB last-level cache: those rows measure the cache, not memory",
  ]);
  assert.deepEqual(progress, [
    "cpu 4KiB: roofline",
    "cpu 4KiB: 1 scrubs",
    "cpu 4KiB: roofline again",
    "cpu 1MiB: roofline",
    "cpu 1MiB: 1 scrubs",
    "cpu 1MiB: roofline again",
  ]);
});

Deno.test("runSanitizeBench() keeps the better roofline of the runs before and after the scrubs", async () => {
  const runs: Roofline[] = [
    { writeGBps: 10, readGBps: 5, methods: { write: "w", read: "r" } },
    { writeGBps: 20, readGBps: 2, copyGBps: 3, methods: { write: "w", read: "r" } },
  ];
  const probe = { measure: () => Promise.resolve(runs.shift()!) };
  const report = await runSanitizeBench(new CpuSanitizer(), probe, {
    sizes: [4096],
    iterations: 1,
  });
  assert.deepEqual(report.results[0]!.roofline, {
    writeGBps: 20,
    readGBps: 5,
    copyGBps: 3,
    methods: { write: "w", read: "r" },
  });
});

/** CPU sanitizer with a batched block scrub, standing in for CUDA's. */
class BatchedCpu extends CpuSanitizer implements BatchedSanitizer {
  launches = 0;
  async zeroVerifyBlocks(
    pool: DeviceBuffer,
    blocks: readonly BenchBlock[],
  ): Promise<{ nonZeroBytes: number }> {
    this.launches++;
    // The CPU backend zeroes whole buffers only; zeroing the pool once per launch is enough
    // for the bench's bookkeeping.
    await this.zero(pool);
    return { nonZeroBytes: blocks.length === 0 ? 0 : (await this.verify(pool)).nonZeroBytes };
  }
}

Deno.test("runSanitizeBench() compares per-block launches with one batched launch", async () => {
  const sanitizer = new BatchedCpu();
  const report = await runSanitizeBench(sanitizer, fixedProbe, {
    sizes: [],
    blocks: { count: 4, blockBytes: 1024 },
    clock: tickingClock(),
  });
  assert.equal(sanitizer.launches, 5);
  const blocks = report.blocks!;
  assertClose(blocks.count, 4);
  assertClose(blocks.nonZeroAfterScrub, 0);
  assertClose(blocks.batchedSeconds, 0.001);
  assertClose(blocks.perBlockSeconds, 0.001);
  assertClose(blocks.wholePoolSeconds, 0.001);
  assertClose(blocks.speedupOverPerBlock, 1);
  assertClose(blocks.batchedVsWholePool, 1);
  assert.equal(report.ok, true);
});

Deno.test("runSanitizeBench() refuses small-block mode on a sanitizer without batching", async () => {
  await assert.rejects(
    runSanitizeBench(new CpuSanitizer(), fixedProbe, {
      sizes: [],
      blocks: { count: 1, blockBytes: 8 },
    }),
    /Small-block mode needs a batched sanitizer: cpu has none/,
  );
});

Deno.test("cpuRoofline() measures write and read bandwidth of plain memory", async () => {
  const roofline = await cpuRoofline().measure(1 << 20, 2);
  assert.ok(roofline.writeGBps! > 0 && Number.isFinite(roofline.writeGBps!));
  assert.ok(roofline.readGBps! > 0 && Number.isFinite(roofline.readGBps!));
  assert.equal(roofline.copyGBps, undefined);
});

/** A CPU sanitizer that can copy and memset, standing in for a GPU in roofline tests. */
class CopyingCpu extends CpuSanitizer {
  copies = 0;
  memsets = 0;
  async copy(_source: DeviceBuffer, _destination: DeviceBuffer): Promise<void> {
    this.copies++;
    await Promise.resolve();
  }
  async zeroWith(buffer: DeviceBuffer, _method: "memset"): Promise<void> {
    this.memsets++;
    await this.zero(buffer);
  }
}

Deno.test("deviceRoofline() times copies and, where offered, memsets on the device", async () => {
  const device = new CopyingCpu();
  const roofline = await deviceRoofline(device, {
    copyMethod: "copy",
    writeMethod: "memset",
    clock: tickingClock(),
  }).measure(1_000_000, 3);
  assert.deepEqual(roofline, {
    copyGBps: 1,
    writeGBps: 1,
    methods: { copy: "copy", write: "memset" },
  });
  assert.equal(device.copies, 4); // one warm-up, three timed
  assert.equal(device.memsets, 4);
});

Deno.test("rooflineFor() picks the CPU probe for cpu and a copy probe for a copying device", async () => {
  const cpu = await rooflineFor(new CpuSanitizer()).measure(4096, 1);
  assert.equal(cpu.methods.read, "memcmp against a cached zero block");
  const gpu = new CopyingCpu();
  Object.defineProperty(gpu, "device", { value: "webgpu" });
  const webgpu = await rooflineFor(gpu, tickingClock()).measure(1000, 1);
  assert.deepEqual(webgpu.methods, { copy: "copyBufferToBuffer" });
  Object.defineProperty(gpu, "device", { value: "cuda" });
  const cuda = await rooflineFor(gpu, tickingClock()).measure(1000, 1);
  assert.deepEqual(cuda.methods, { copy: "cudaMemcpyAsync D2D", write: "cudaMemsetAsync" });
});
