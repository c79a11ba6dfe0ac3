/**
 * Child process for run_workload_test.ts, run with `--v8-flags=--expose-gc`: replays COUNT
 * requests through runWorkload with an abort signal (as `kvh trace` passes one) and a sink that
 * keeps nothing, and prints the heap in use after a full collection as the last request is done,
 * in MB: what the run holds per request served.
 */
import { CacheTracer } from "../../lib/tracer/mod.ts";
import { CpuSanitizer } from "../../lib/sanitize/cpu.ts";
import { runWorkload, type WorkloadRequest } from "../../lib/workload/mod.ts";
import type { RecordV2 } from "../../lib/forensic/types.ts";

const count = Number(Deno.args[0]);

async function* requests(): AsyncGenerator<WorkloadRequest> {
  for (let i = 0; i < count; i++) {
    yield {
      tenant_id: `t${i % 4}`,
      request_id: `r${i}`,
      model_id: "m",
      tokens: 1,
      layers: 1,
      kv_heads: 1,
      head_dim: 8,
      dtype: "int8",
    };
  }
}

const sanitizer = new CpuSanitizer();
const audit = { append: () => Promise.resolve({} as RecordV2) };
const tracer = new CacheTracer({ sanitizer, audit, defaultMaxReuse: -1 });
let heapMb = -1;
const summary = await runWorkload(tracer, sanitizer, requests(), {
  signal: new AbortController().signal,
  onProgress: (done) => {
    if (done < count) return;
    // Measured while the run still holds its state.
    (globalThis as unknown as { gc(): void }).gc();
    heapMb = Deno.memoryUsage().heapUsed / 1e6;
  },
});
await tracer.close();
console.log(summary.completed, heapMb.toFixed(1));
