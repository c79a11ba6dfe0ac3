/**
 * Tracer lifecycle throughput (issue 3, Benchmarks): allocate → use → scrub with full verify →
 * free, every event logged. `deno bench -A bench/tracer_bench.ts`; the numbers are in
 * bench/results/tracer.md.
 */
import { CacheTracer } from "../lib/tracer/mod.ts";
import { CpuSanitizer } from "../lib/sanitize/cpu.ts";
import { openForensicLog } from "../lib/forensic/mod.ts";
import type { AuditSink, RecordV2 } from "../lib/forensic/types.ts";

const OWNER = { tenantId: "acme", requestId: "r1", modelId: "llama-3-8b" };
const BATCH = 256;

async function lifecycles(tracer: CacheTracer, sanitizer: CpuSanitizer, n: number) {
  // `n` lifecycles in flight at once: the log group-commits their appends together.
  await Promise.all(Array.from({ length: n }, async () => {
    const handle = await tracer.allocate({ ...OWNER, shape: [4096], dtype: "uint8" });
    await tracer.markInUse(handle);
    await sanitizer.fill(tracer.buffer(handle), new Uint8Array([7]));
    await tracer.sanitize(handle);
    await tracer.free(handle);
    await tracer.release(handle);
  }));
}

const memory: AuditSink = { append: () => Promise.resolve({} as RecordV2) };
const memorySanitizer = new CpuSanitizer();
const memoryTracer = new CacheTracer({ sanitizer: memorySanitizer, audit: memory });

Deno.bench(`CacheTracer lifecycle 4 KiB x${BATCH}, in-memory sink`, async () => {
  await lifecycles(memoryTracer, memorySanitizer, BATCH);
});

const dir = await Deno.makeTempDir();
const log = await openForensicLog({
  dir,
  commitDelayMs: 2,
  commitRecords: 1024,
});
const logSanitizer = new CpuSanitizer();
const logTracer = new CacheTracer({ sanitizer: logSanitizer, audit: log });

Deno.bench(`CacheTracer lifecycle 4 KiB x${BATCH}, forensic log`, async () => {
  await lifecycles(logTracer, logSanitizer, BATCH);
});

globalThis.addEventListener("unload", () => {
  log.close().finally(() => Deno.removeSync(dir, { recursive: true }));
});
