import assert from "node:assert/strict";
import { CacheTracer } from "../../lib/tracer/mod.ts";
import { CpuSanitizer } from "../../lib/sanitize/cpu.ts";
import {
  kvBytes,
  runWorkload,
  syntheticWorkload,
  tenantPattern,
  type WorkloadRequest,
} from "../../lib/workload/mod.ts";
import { MemorySink } from "../tracer/_sinks.ts";

Deno.test("syntheticWorkload() is reproducible and uses several tenants, models and sizes", () => {
  const requests = [...syntheticWorkload({ tenants: 3, requests: 200, tokens: 64, seed: 5 })];
  assert.deepEqual(requests, [
    ...syntheticWorkload({ tenants: 3, requests: 200, tokens: 64, seed: 5 }),
  ]);
  assert.equal(new Set(requests.map((r) => r.tenant_id)).size, 3);
  assert.ok(new Set(requests.map((r) => r.model_id)).size >= 3);
  assert.ok(new Set(requests.map(kvBytes)).size >= 4);
  assert.ok(requests.every((r) => r.tokens % 16 === 0 && r.tokens <= 64));
  assert.equal([...syntheticWorkload({ tokens: 8, requests: 1 })][0]!.tokens, 8);
  assert.throws(() => [...syntheticWorkload({ tenants: 0 })], RangeError);
});

Deno.test("runWorkload() reuses buffers across tenants with no quarantine by default", async () => {
  const sanitizer = new CpuSanitizer();
  const audit = new MemorySink();
  const tracer = new CacheTracer({ sanitizer, audit, defaultMaxReuse: -1 });
  let progress = 0;
  const summary = await runWorkload(tracer, sanitizer, syntheticWorkload({ requests: 60 }), {
    concurrency: 4,
    onProgress: (done) => (progress = done),
  });
  assert.equal(summary.completed, 60);
  assert.equal(progress, 60);
  assert.ok(summary.reused > 20);
  const metrics = tracer.metrics();
  assert.equal(metrics.quarantine_count, 0);
  assert.ok(audit.events.some((e) => e.event === "reuse" && e.fields.cross_tenant === true));
  await tracer.close();
});

Deno.test("runWorkload() counts policy quarantines and goes on", async () => {
  const sanitizer = new CpuSanitizer();
  const tracer = new CacheTracer({ sanitizer, audit: new MemorySink(), defaultMaxReuse: 0 });
  const summary = await runWorkload(tracer, sanitizer, syntheticWorkload({ requests: 30 }));
  assert.equal(summary.completed, 30);
  assert.ok(summary.quarantined > 0);
  assert.equal(tracer.metrics().quarantines_by_reason.reuse_limit_exceeded, summary.quarantined);
  const ttl = new CacheTracer({ sanitizer, audit: new MemorySink(), defaultTtlSec: 0 });
  const refused = await runWorkload(ttl, sanitizer, syntheticWorkload({ requests: 5 }));
  assert.equal(refused.failed, 5);
});

Deno.test("runWorkload() stops on a log failure and when aborted", async () => {
  const sanitizer = new CpuSanitizer();
  const audit = new MemorySink();
  const tracer = new CacheTracer({ sanitizer, audit, defaultMaxReuse: -1 });
  audit.failing = true;
  await assert.rejects(
    runWorkload(tracer, sanitizer, syntheticWorkload({ requests: 5 })),
    /forensic log/,
  );
  const abort = new AbortController();
  abort.abort();
  const ok = new CacheTracer({ sanitizer, audit: new MemorySink() });
  const summary = await runWorkload(ok, sanitizer, syntheticWorkload({ requests: 5 }), {
    signal: abort.signal,
  });
  assert.equal(summary.requests, 0);
  await assert.rejects(runWorkload(ok, sanitizer, [], { concurrency: 0 }), RangeError);
  assert.ok(tenantPattern({ tenant_id: "a", request_id: "b" }).length > 0);
});

Deno.test("runWorkload() stops when aborted while the workload read is still pending", async () => {
  const sanitizer = new CpuSanitizer();
  const tracer = new CacheTracer({ sanitizer, audit: new MemorySink() });
  const abort = new AbortController();
  let returned = false;
  const [first] = syntheticWorkload({ requests: 1 });
  // A producer that sends one request and then goes quiet for good.
  const stalled: AsyncIterable<WorkloadRequest> = {
    [Symbol.asyncIterator]: () => {
      let sent = false;
      return {
        next: () => {
          if (sent) return new Promise<never>(() => {});
          sent = true;
          return Promise.resolve({ done: false, value: first! });
        },
        return: () => {
          returned = true;
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
  const summary = await runWorkload(tracer, sanitizer, stalled, {
    signal: abort.signal,
    onProgress: () => abort.abort(),
  });
  assert.equal(summary.requests, 1);
  assert.equal(summary.completed, 1);
  assert.ok(returned, "the source is released");
  await tracer.close();
});

Deno.test("runWorkload() finishes the requests in flight before reporting a bad workload line", async () => {
  const sanitizer = new CpuSanitizer();
  const tracer = new CacheTracer({ sanitizer, audit: new MemorySink() });
  async function* broken() {
    yield* syntheticWorkload({ requests: 3 });
    throw new Error("Invalid workload w:4: malformed JSON");
  }
  await assert.rejects(runWorkload(tracer, sanitizer, broken(), { concurrency: 3 }), /w:4/);
  assert.equal(tracer.metrics().freed_total, 3);
  await tracer.close();
});

Deno.test("runWorkload() holds no memory per request served", async () => {
  // Racing each read against one promise of the abort left a reaction on it per request: about
  // half a kilobyte each, held until the run ended.
  const child = new URL("./_retention_child.ts", import.meta.url).pathname;
  const heapAfter = async (requests: number) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", child, String(requests)],
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const [completed, heapMb] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
    assert.equal(completed, requests);
    return heapMb!;
  };
  const small = await heapAfter(1000);
  const large = await heapAfter(20000);
  assert.ok(large - small < 2, `${small} MB after 1,000 requests, ${large} MB after 20,000`);
});
