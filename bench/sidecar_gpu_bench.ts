/**
 * The sidecar on a GPU (issue 11), for the GPU script, in the order of priority:
 *
 * 1. the GPU memory kvh's own CUDA context takes: this process (playing the engine) reads the
 *    device's free memory before and after a `kvh trace --listen --device cuda` child opens its
 *    context on the first CUDA pool;
 * 2. release of one 1 GiB block, and of 16,384 scattered blocks × 64 KiB (1 GiB) in one request: round
 *    trip p50 and the daemon's own time, scrub and on-device verification on kvh's stream.
 *
 * The pools are allocated here, filled with tenant bytes before every release and shared by IPC
 * handle, as an engine does; each release's result is checked (coverage 100%, every block zero
 * from this side). Prints Markdown. Exit 3 without a GPU.
 *
 * Usage: deno run -A bench/sidecar_gpu_bench.ts [--iterations 10]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadCudaLibrary } from "../ffi/cuda/binding.ts";
import { toHex } from "../lib/forensic/digest.ts";
import { percentile } from "../lib/metrics/percentile.ts";
import { CudaSanitizer } from "../lib/sanitize/cuda.ts";
import { SidecarClient } from "../lib/sidecar/mod.ts";
import { startListen } from "../tests/sidecar/_listen.ts";

const { values } = parseArgs({ options: { iterations: { type: "string", default: "10" } } });
const ITERATIONS = Number(values.iterations);
const GIB = 1 << 30;

let engine: CudaSanitizer;
try {
  engine = await CudaSanitizer.open();
} catch (error) {
  console.log(`# Sidecar on a GPU\n\nNo GPU: ${(error as Error).message}`);
  Deno.exit(3);
}
const lib = loadCudaLibrary();
const uuid = new Uint8Array(16);
lib.symbols.kvh_device_uuid(0, uuid);
const freeBytes = () => {
  const free = new BigUint64Array(1);
  const total = new BigUint64Array(1);
  lib.symbols.kvh_mem_get_info(free, total);
  return Number(free[0]);
};

const daemon = await startListen(["--device", "cuda"]);
const socket = daemon.socket;
const kvh = await SidecarClient.connect(socket);

// A stride twice the block keeps the blocks apart, so they stay 16,384 ranges (adjacent blocks
// would be merged into one range), as an engine's scattered blocks are.
async function register(name: string, blocks: number, blockBytes: number, stride = blockBytes) {
  const buffer = await engine.alloc(blocks * stride);
  await kvh.request("register_pool", {
    pool: name,
    device: "cuda",
    ipc_handle: btoa(String.fromCharCode(...engine.exportIpc(buffer))),
    gpu_uuid: toHex(uuid),
    offset: 0,
    bytes: blocks * stride,
    blocks,
    regions: [{ offset: 0, block_stride: stride, block_bytes: blockBytes }],
  });
  return buffer;
}

const before = freeBytes();
const whole = await register("whole", 1, GIB);
const contextBytes = before - freeBytes();

async function measure(name: string, buffer: Awaited<ReturnType<typeof register>>, blocks: number) {
  const ids = Array.from({ length: blocks }, (_, i) => i);
  const roundTrips: number[] = [];
  const inside: number[] = [];
  for (let i = 0; i < ITERATIONS + 2; i++) {
    await engine.fill(buffer, new Uint8Array([0x5a, 0xa5]));
    const { handle } = await kvh.request("assign", {
      pool: name,
      blocks: ids,
      tenant_id: "acme",
      request_id: `r${i}`,
      model_id: "m",
    });
    const started = performance.now();
    const released = await kvh.release(handle as string);
    const elapsed = performance.now() - started;
    if (released.coverage_pct !== 100) throw new Error(`Coverage ${released.coverage_pct}`);
    const left = await engine.verify(buffer);
    // Half of the strided pool is gaps kvh must not touch: they keep the tenant bytes.
    const gaps = blocks === 1 ? 0 : blocks * 64 * 1024;
    if (left.nonZeroBytes !== gaps) {
      throw new Error(`${left.nonZeroBytes} non-zero bytes left, expected ${gaps} in the gaps`);
    }
    if (i < 2) continue;
    roundTrips.push(elapsed);
    inside.push(released.duration_ms);
  }
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  return {
    p50: percentile(sorted(roundTrips), 50),
    p99: percentile(sorted(roundTrips), 99),
    inside: percentile(sorted(inside), 50),
  };
}

const one = await measure("whole", whole, 1);
const paged = await register("paged", 16384, 64 * 1024, 128 * 1024);
const many = await measure("paged", paged, 16384);
await kvh.close();
const status = await daemon.stop();
await engine.close();
lib.close();
await Deno.remove(daemon.dir, { recursive: true });

const gbps = (ms: number) => (GIB / (ms / 1000) / 1e9).toFixed(1);
console.log(`# Sidecar on a GPU

GPU ${engine.info.name}, driver ${engine.info.driverVersion}; daemon exit ${status.code}.

| figure | value |
| --- | --- |
| GPU memory of kvh's CUDA context (and its IPC mapping) | ${
  (contextBytes / 2 ** 20).toFixed(0)
} MiB |
| release of 1 block × 1 GiB: round trip p50 / p99 | ${one.p50.toFixed(2)} / ${
  one.p99.toFixed(2)
} ms (${gbps(one.p50)} GB/s) |
| release of 1 block × 1 GiB: daemon time p50 | ${one.inside.toFixed(2)} ms |
| release of 16,384 blocks × 64 KiB (1 GiB): round trip p50 / p99 | ${many.p50.toFixed(2)} / ${
  many.p99.toFixed(2)
} ms (${gbps(many.p50)} GB/s) |
| release of 16,384 blocks × 64 KiB: daemon time p50 | ${many.inside.toFixed(2)} ms |

${ITERATIONS} releases of each after 2 warm-up ones; every release verified from the engine's side.`);
