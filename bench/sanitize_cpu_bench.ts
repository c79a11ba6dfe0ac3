/**
 * CPU sanitizer throughput (issue 3, Benchmarks): zeroing, full verification candidates and
 * scrub + verify of 64 MiB, zeroing of 256 MiB. `deno bench -A bench/sanitize_cpu_bench.ts`;
 * the numbers are in bench/results/tracer.md.
 */
import { CpuSanitizer, TS_CPU_KERNELS } from "../lib/sanitize/cpu.ts";

const MIB = 1024 * 1024;
const sanitizer = new CpuSanitizer();
const buffer64 = await sanitizer.alloc(64 * MIB);
const bytes64 = sanitizer.bytes(buffer64);
const buffer256 = await sanitizer.alloc(256 * MIB);
const bytes256 = sanitizer.bytes(buffer256);
bytes64.fill(7);
bytes256.fill(7);

Deno.bench("zero 256 MiB: Uint8Array.fill(0)", { group: "zero256" }, () => {
  bytes256.fill(0);
});

Deno.bench("verify 64 MiB: Buffer.compare against a zero block (TS_CPU_KERNELS)", {
  group: "verify64",
  baseline: true,
}, () => {
  TS_CPU_KERNELS.countNonZero(bytes64);
});

const words = new Uint32Array(bytes64.buffer, bytes64.byteOffset, bytes64.byteLength / 4);
Deno.bench("verify 64 MiB: Uint32Array OR-reduction loop", { group: "verify64" }, () => {
  let a = 0, b = 0, c = 0, d = 0;
  for (let i = 0; i < words.length; i += 4) {
    a |= words[i]!;
    b |= words[i + 1]!;
    c |= words[i + 2]!;
    d |= words[i + 3]!;
  }
  if ((a | b | c | d) !== 0) throw new Error("Buffer is not zero");
});

const big = new BigUint64Array(bytes64.buffer, bytes64.byteOffset, bytes64.byteLength / 8);
Deno.bench("verify 64 MiB: BigUint64Array OR-reduction loop", { group: "verify64" }, () => {
  let acc = 0n;
  for (let i = 0; i < big.length; i++) acc |= big[i]!;
  if (acc !== 0n) throw new Error("Buffer is not zero");
});

Deno.bench("scrub + full verify 64 MiB: CpuSanitizer zero then verify", async () => {
  await sanitizer.zero(buffer64);
  const result = await sanitizer.verify(buffer64);
  if (result.nonZeroBytes !== 0) throw new Error("Scrub failed");
});
