/**
 * CPU sanitizer throughput (issue 3, Benchmarks): zeroing of 256 MiB against libc `memset`,
 * full verification candidates and scrub + verify of 64 MiB, pure-TS kernels against the
 * native helper (ffi/native/, `deno task build:native`) in the same run.
 * `deno bench -A bench/sanitize_cpu_bench.ts`; the numbers are in bench/results/tracer.md.
 */
import { CpuSanitizer, TS_CPU_KERNELS } from "../lib/sanitize/cpu.ts";
import { loadNativeCpuKernels } from "../lib/sanitize/native.ts";

const MIB = 1024 * 1024;
const native = loadNativeCpuKernels();
if (native === undefined) console.error("libkvh_cpu.so not built: native cases skipped");
const sanitizer = new CpuSanitizer();
const nativeSanitizer = new CpuSanitizer({ kernels: native });
const buffer64 = await sanitizer.alloc(64 * MIB);
const bytes64 = sanitizer.bytes(buffer64);
const nativeBuffer64 = await nativeSanitizer.alloc(64 * MIB);
const buffer256 = await sanitizer.alloc(256 * MIB);
const bytes256 = sanitizer.bytes(buffer256);
bytes64.fill(7);
bytes256.fill(7);
nativeSanitizer.bytes(nativeBuffer64).fill(7);

const libc = Deno.dlopen("libc.so.6", {
  memset: { parameters: ["buffer", "i32", "usize"], result: "pointer" },
});

Deno.bench(
  "zero 256 MiB: libc memset (one thread, FFI)",
  { group: "zero256", baseline: true },
  () => {
    libc.symbols.memset(bytes256, 0, BigInt(bytes256.length));
  },
);

Deno.bench("zero 256 MiB: Uint8Array.fill(0) (TS_CPU_KERNELS)", { group: "zero256" }, () => {
  bytes256.fill(0);
});

Deno.bench("zero 256 MiB: native, all threads, non-temporal", {
  group: "zero256",
  ignore: native === undefined,
}, async () => {
  await native!.zero(bytes256);
});

Deno.bench("verify 64 MiB: Buffer.compare against a zero block (TS_CPU_KERNELS)", {
  group: "verify64",
  baseline: true,
}, () => {
  TS_CPU_KERNELS.countNonZero(bytes64);
});

Deno.bench("verify 64 MiB: native, all threads, AVX2 OR-reduction", {
  group: "verify64",
  ignore: native === undefined,
}, async () => {
  await native!.countNonZero(bytes64);
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

Deno.bench("scrub + full verify 64 MiB: CpuSanitizer, TS kernels", {
  group: "scrub64",
  baseline: true,
}, async () => {
  await sanitizer.zero(buffer64);
  const result = await sanitizer.verify(buffer64);
  if (result.nonZeroBytes !== 0) throw new Error("Scrub failed");
});

Deno.bench("scrub + full verify 64 MiB: CpuSanitizer, native kernels", {
  group: "scrub64",
  ignore: native === undefined,
}, async () => {
  await nativeSanitizer.zero(nativeBuffer64);
  const result = await nativeSanitizer.verify(nativeBuffer64);
  if (result.nonZeroBytes !== 0) throw new Error("Scrub failed");
});
