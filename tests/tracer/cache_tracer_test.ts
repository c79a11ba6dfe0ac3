import assert from "node:assert/strict";
import {
  AuditEmitError,
  CacheTracer,
  CoverageBelowThresholdError,
  InvalidIdentifierError,
  InvalidStateError,
  PolicyViolationError,
  UnknownHandleError,
  validateIdentifier,
} from "../../lib/tracer/mod.ts";
import { type CpuKernels, CpuSanitizer, TS_CPU_KERNELS } from "../../lib/sanitize/cpu.ts";
import { AnomalyMonitor } from "../../lib/anomaly/mod.ts";
import { MemorySink } from "./_sinks.ts";

const A = { tenantId: "acme", requestId: "r1", modelId: "llama-3-8b" };
const B = { tenantId: "globex", requestId: "r2", modelId: "llama-3-8b" };
const SHAPE = [2, 2, 2, 16, 64];
const PATTERN = new TextEncoder().encode("acme-secret");

function setup(options: Partial<ConstructorParameters<typeof CacheTracer>[0]> = {}) {
  const sanitizer = new CpuSanitizer();
  const audit = new MemorySink();
  const tracer = new CacheTracer({ sanitizer, audit, ...options });
  return { sanitizer, audit, tracer };
}

async function written(
  tracer: CacheTracer,
  sanitizer: CpuSanitizer,
  owner = A,
  extra: { ttlSec?: number; maxReuse?: number } = {},
): Promise<string> {
  const handle = await tracer.allocate({ ...owner, shape: SHAPE, dtype: "float16", ...extra });
  await tracer.markInUse(handle);
  await sanitizer.fill(tracer.buffer(handle), PATTERN);
  return handle;
}

Deno.test("CacheTracer runs allocate, use, scrub and free and logs each step", async () => {
  const { sanitizer, audit, tracer } = setup();
  const handle = await written(tracer, sanitizer);
  assert.match(handle, /^[0-9a-f]{32}$/);
  assert.equal(tracer.info(handle).nbytes, 2 * 2 * 2 * 16 * 64 * 2);
  const result = await tracer.sanitize(handle);
  assert.equal(result.coveragePct, 100);
  assert.equal(result.verified, true);
  assert.equal(result.checkedBytes, 16384);
  await tracer.free(handle);
  assert.deepEqual(audit.names(), ["allocate", "in_use", "sanitize", "free"]);
  const allocate = audit.events[0]!.fields;
  assert.equal(allocate.tenant_id, "acme");
  assert.equal(allocate.nbytes, 16384);
  assert.ok(!JSON.stringify(audit.events).includes("acme-secret"));
  const metrics = tracer.metrics();
  assert.equal(metrics.freed_total, 1);
  assert.equal(metrics.min_coverage_pct, 100);
  assert.equal(metrics.unsanitized_regions_count, 0);
  assert.equal(metrics.quarantine_count, 0);
  await tracer.close();
  assert.equal(audit.names().at(-1), "release");
});

Deno.test("CacheTracer.free() without a scrub quarantines and throws", async () => {
  const { sanitizer, audit, tracer } = setup();
  const handle = await written(tracer, sanitizer);
  await assert.rejects(tracer.free(handle), CoverageBelowThresholdError);
  assert.equal(tracer.info(handle).state, "quarantined");
  const quarantine = audit.events.at(-1)!;
  assert.equal(quarantine.event, "quarantine");
  assert.equal(quarantine.critical, true);
  assert.equal(quarantine.fields.reason, "coverage_below_threshold");
  assert.equal(tracer.metrics().quarantine_count, 1);
  assert.equal(tracer.metrics().min_coverage_pct, 0);
  await assert.rejects(tracer.sanitize(handle), InvalidStateError);
  await assert.rejects(tracer.reuse(handle, B), InvalidStateError);
});

Deno.test("CacheTracer.sanitize() quarantines when a broken zeroizer leaves bytes", async () => {
  const broken: CpuKernels = { ...TS_CPU_KERNELS, name: "broken", zero: () => {} };
  const sanitizer = new CpuSanitizer({ kernels: broken });
  const audit = new MemorySink();
  const tracer = new CacheTracer({ sanitizer, audit });
  const handle = await written(tracer, sanitizer);
  const error = await tracer.sanitize(handle).catch((e) => e);
  assert.ok(error instanceof CoverageBelowThresholdError);
  assert.equal(error.coveragePct, 0);
  assert.equal(tracer.info(handle).state, "quarantined");
  const sanitizeEvent = audit.events.find((e) => e.event === "sanitize")!;
  assert.equal(sanitizeEvent.critical, true);
  assert.equal(sanitizeEvent.fields.nonzero_bytes, 16384);
  assert.equal(tracer.metrics().quarantines_by_reason.verification_failed, 1);
});

Deno.test("CacheTracer.sanitize() in sample mode detects bytes at sampled positions", async () => {
  const { sanitizer, tracer } = setup({ verify: "sample", verifySamples: 64 });
  const handle = await written(tracer, sanitizer);
  const result = await tracer.sanitize(handle);
  assert.equal(result.verifyMode, "sample");
  assert.equal(result.checkedBytes, 64);
  assert.equal(result.coveragePct, 100);
  await tracer.free(handle);
});

Deno.test("CacheTracer with verify none reports unverified coverage and refuses the free", async () => {
  const { sanitizer, tracer } = setup({ verify: "none" });
  const handle = await written(tracer, sanitizer);
  const result = await tracer.sanitize(handle, { doublePass: true });
  assert.equal(result.verified, false);
  assert.equal(result.coveragePct, 0);
  assert.equal(result.scrubbedBytes, 32768);
  await assert.rejects(tracer.free(handle), CoverageBelowThresholdError);
  const metrics = tracer.metrics();
  assert.equal(metrics.coverage_verified, false);
  assert.equal(metrics.min_coverage_pct, 0);
});

Deno.test("CacheTracer.markInUse() quarantines a buffer whose TTL is 0 or negative", async () => {
  for (const ttlSec of [0, -5]) {
    const { tracer } = setup();
    const handle = await tracer.allocate({ ...A, shape: SHAPE, ttlSec });
    const error = await tracer.markInUse(handle).catch((e) => e);
    assert.ok(error instanceof PolicyViolationError);
    assert.equal(error.policy, "ttl");
    assert.equal(error.exitCode, 2);
    assert.equal(tracer.metrics().policy_violations_by_policy.ttl, 1);
  }
});

Deno.test("CacheTracer quarantines a buffer whose TTL expired since allocation", async () => {
  let now = 1_000_000;
  const { sanitizer, tracer } = setup({ now: () => now, defaultTtlSec: 10, defaultMaxReuse: 5 });
  const handle = await written(tracer, sanitizer);
  await tracer.sanitize(handle);
  await tracer.free(handle);
  now += 10_001;
  const error = await tracer.reuse(handle, B).catch((e) => e);
  assert.ok(error instanceof PolicyViolationError);
  assert.equal(error.reason, "ttl_expired");
  const fresh = await tracer.allocate({ ...A, shape: SHAPE });
  now += 11_000;
  await assert.rejects(tracer.markInUse(fresh), PolicyViolationError);
});

Deno.test("CacheTracer.reuse() hands a scrubbed buffer to another tenant with no bytes left", async () => {
  const { sanitizer, audit, tracer } = setup({ defaultMaxReuse: 2 });
  const first = await written(tracer, sanitizer);
  await tracer.sanitize(first);
  await tracer.free(first);
  const second = await tracer.reuse(first, B);
  assert.notEqual(second, first);
  assert.throws(() => tracer.info(first), UnknownHandleError);
  assert.equal(tracer.info(second).tenantId, "globex");
  assert.equal(tracer.info(second).reuseCount, 1);
  await tracer.markInUse(second);
  assert.equal(sanitizer.bytes(tracer.buffer(second)).some((b) => b !== 0), false);
  const reuse = audit.events.find((e) => e.event === "reuse")!.fields;
  assert.equal(reuse.previous_tenant_id, "acme");
  assert.equal(reuse.cross_tenant, true);
  assert.deepEqual(reuse.leak_check, { checked_bytes: 16384, nonzero_bytes: 0 });
  assert.equal(tracer.metrics().reuse_total, 1);
  assert.equal(tracer.metrics().reuse_rate, 1);
});

Deno.test("CacheTracer.reuse() detects another tenant's bytes written after the scrub", async () => {
  const { sanitizer, audit, tracer } = setup({ defaultMaxReuse: 2, verify: "sample" });
  const handle = await written(tracer, sanitizer);
  const buffer = tracer.buffer(handle);
  await tracer.sanitize(handle);
  await tracer.free(handle);
  sanitizer.bytes(buffer)[1] = 0x41; // a stray write from the engine after the scrub
  const error = await tracer.reuse(handle, B).catch((e) => e);
  assert.ok(error instanceof PolicyViolationError);
  assert.equal(error.reason, "leak_detected");
  const leak = audit.events.find((e) => e.event === "leak_detected")!;
  assert.equal(leak.critical, true);
  assert.equal(leak.fields.nonzero_bytes, 1);
  assert.equal(tracer.metrics().leaks_detected_total, 1);
});

Deno.test("CacheTracer.reuse() beyond max reuse quarantines; 0 means any reuse", async () => {
  const { sanitizer, tracer } = setup();
  const handle = await written(tracer, sanitizer);
  await tracer.sanitize(handle);
  await tracer.free(handle);
  const error = await tracer.reuse(handle, A).catch((e) => e);
  assert.ok(error instanceof PolicyViolationError);
  assert.equal(error.policy, "max_reuse");
  const { sanitizer: s2, tracer: t2 } = setup();
  let h = await written(t2, s2, A, { maxReuse: 1 });
  await t2.sanitize(h);
  await t2.free(h);
  h = await t2.reuse(h, A);
  await t2.markInUse(h);
  await t2.sanitize(h);
  await t2.free(h);
  await assert.rejects(t2.reuse(h, A), PolicyViolationError);
});

Deno.test("CacheTracer with negative max reuse reuses without limit", async () => {
  const { sanitizer, tracer } = setup({ defaultMaxReuse: -1 });
  let handle = await written(tracer, sanitizer);
  for (let i = 0; i < 5; i++) {
    await tracer.sanitize(handle);
    await tracer.free(handle);
    handle = await tracer.reuse(handle, i % 2 ? A : B);
    await tracer.markInUse(handle);
  }
  assert.equal(tracer.info(handle).reuseCount, 5);
});

Deno.test("CacheTracer.reuse() refuses a cross-tenant hand-off without a verified scrub", async () => {
  const { sanitizer, tracer } = setup({ defaultMaxReuse: 3 });
  const handle = await written(tracer, sanitizer);
  await tracer.sanitize(handle, { verify: "none" });
  const error = await tracer.reuse(handle, B).catch((e) => e);
  assert.ok(error instanceof PolicyViolationError);
  assert.equal(error.reason, "unverified_cross_tenant");
  const { sanitizer: s2, tracer: t2 } = setup({ defaultMaxReuse: 3 });
  const same = await written(t2, s2);
  await t2.sanitize(same, { verify: "none" });
  const next = await t2.reuse(same, { ...A, requestId: "r9" });
  assert.equal(t2.info(next).state, "allocated");
});

Deno.test("CacheTracer gives a zero-length buffer 100% coverage", async () => {
  const { tracer } = setup();
  const handle = await tracer.allocate({ ...A, shape: [2, 0, 8], dtype: "bfloat16" });
  await tracer.markInUse(handle);
  const result = await tracer.sanitize(handle);
  assert.equal(result.coveragePct, 100);
  assert.equal(result.verified, true);
  await tracer.free(handle);
  const next = await tracer.reuse(handle, B).catch((e) => e);
  assert.ok(next instanceof PolicyViolationError); // default max reuse 0
});

Deno.test("CacheTracer throws UnknownHandleError for unknown and retired handles", async () => {
  const { sanitizer, tracer } = setup();
  await assert.rejects(tracer.markInUse("deadbeef"), UnknownHandleError);
  await assert.rejects(tracer.sanitize(""), UnknownHandleError);
  assert.throws(() => tracer.buffer("nope"), UnknownHandleError);
  const handle = await written(tracer, sanitizer);
  await tracer.sanitize(handle);
  await tracer.free(handle);
  await tracer.release(handle);
  await assert.rejects(tracer.free(handle), UnknownHandleError);
});

Deno.test("CacheTracer refuses operations in the wrong state", async () => {
  const { sanitizer, tracer } = setup();
  const handle = await written(tracer, sanitizer);
  await assert.rejects(tracer.reuse(handle, B), InvalidStateError);
  await assert.rejects(tracer.release(handle), InvalidStateError);
  await tracer.sanitize(handle);
  assert.throws(() => tracer.buffer(handle), InvalidStateError);
  await assert.rejects(tracer.markInUse(handle), InvalidStateError);
  await tracer.free(handle);
  await assert.rejects(tracer.free(handle), InvalidStateError);
  const busy = [tracer.release(handle), tracer.release(handle)];
  const results = await Promise.allSettled(busy);
  assert.equal(results[0]!.status, "fulfilled");
  assert.ok(results[1]!.status === "rejected" && results[1]!.reason instanceof InvalidStateError);
});

Deno.test("CacheTracer.allocate() rejects invalid identifiers before logging", async () => {
  const { audit, tracer } = setup();
  const bad = ["../x", "", "a".repeat(257), "tab\there", "nul\0", "a/b", "é"];
  for (const tenantId of bad) {
    await assert.rejects(tracer.allocate({ ...A, tenantId, shape: SHAPE }), InvalidIdentifierError);
  }
  await assert.rejects(
    tracer.allocate({ ...A, requestId: "x..y", shape: SHAPE }),
    InvalidIdentifierError,
  );
  await assert.rejects(tracer.reuse("h", { ...B, modelId: "" }), InvalidIdentifierError);
  assert.equal(audit.events.length, 0);
  await tracer.allocate({ ...A, tenantId: "a".repeat(256), shape: SHAPE });
  assert.throws(() => validateIdentifier("tenant_id", 42), /expected a string, got number/);
});

Deno.test("CacheTracer.allocate() rejects bad shapes, dtypes and policies", async () => {
  const { tracer } = setup();
  await assert.rejects(tracer.allocate({ ...A, shape: [2, -1] }), RangeError);
  await assert.rejects(tracer.allocate({ ...A, shape: [2.5] }), RangeError);
  await assert.rejects(tracer.allocate({ ...A, shape: [2], dtype: "float128" }), RangeError);
  await assert.rejects(tracer.allocate({ ...A, shape: [2 ** 40, 2 ** 40] }), RangeError);
  await assert.rejects(tracer.allocate({ ...A, shape: [2], ttlSec: NaN }), RangeError);
  await assert.rejects(tracer.allocate({ ...A, shape: [2], maxReuse: 1.5 }), RangeError);
  const sanitizer = new CpuSanitizer();
  const audit = new MemorySink();
  assert.throws(() => new CacheTracer({ sanitizer, audit, coverageThresholdPct: 101 }), RangeError);
  assert.throws(() => new CacheTracer({ sanitizer, audit, verifySamples: 0 }), RangeError);
  assert.throws(() => new CacheTracer({ sanitizer, audit, defaultMaxReuse: 0.5 }), RangeError);
  assert.throws(() => new CacheTracer({ sanitizer, audit, defaultTtlSec: Infinity }), RangeError);
});

Deno.test("CacheTracer fails the operation and never reuses the buffer when the log fails", async () => {
  const { sanitizer, audit, tracer } = setup({ defaultMaxReuse: 5 });
  const handle = await written(tracer, sanitizer);
  await tracer.sanitize(handle);
  audit.failing = true;
  const error = await tracer.free(handle).catch((e) => e);
  assert.ok(error instanceof AuditEmitError);
  assert.match(error.message, /Cannot write free event to the forensic log: No space left/);
  assert.equal(tracer.info(handle).state, "quarantined");
  audit.failing = false;
  await assert.rejects(tracer.reuse(handle, B), InvalidStateError);
  const metrics = tracer.metrics();
  assert.equal(metrics.audit_emit_failures_total, 2);
  assert.equal(metrics.audit_critical_emit_failures_total, 1);
  assert.equal(metrics.quarantines_by_reason.audit_failed, 1);
  audit.failing = true;
  await assert.rejects(tracer.allocate({ ...A, shape: SHAPE }), AuditEmitError);
  assert.equal(tracer.stats().totalBuffers, 1);
});

Deno.test("CacheTracer.quarantine() takes a buffer out of circulation for good", async () => {
  const { sanitizer, audit, tracer } = setup();
  const handle = await written(tracer, sanitizer);
  await tracer.quarantine(handle, "suspected corruption");
  assert.equal(audit.events.at(-1)!.fields.note, "suspected corruption");
  assert.equal(audit.events.at(-1)!.fields.scrubbed, true);
  assert.throws(() => tracer.buffer(handle), InvalidStateError);
  assert.equal(tracer.stats().quarantinedBuffers, 1);
  assert.equal(tracer.stats().activeBuffers, 0);
});

Deno.test("CacheTracer.close() refuses new allocations", async () => {
  const { tracer } = setup();
  await tracer.close();
  await tracer.close();
  await assert.rejects(tracer.allocate({ ...A, shape: SHAPE }), TypeError);
});

Deno.test("CacheTracer logs a scrub that is suddenly 10x slower as an anomaly", async () => {
  // A fake monotonic clock: each reading advances it by `step` ms, so a scrub (two readings)
  // takes exactly `step` ms whatever the machine is doing.
  let clock = 0;
  let step = 1;
  const monotonicNow = () => (clock += step);
  const sanitizer = new CpuSanitizer();
  const audit = new MemorySink();
  const anomalies = new AnomalyMonitor({ minReportIntervalMs: 0, minSamples: 8 });
  const tracer = new CacheTracer({ sanitizer, audit, anomalies, monotonicNow });
  for (let i = 0; i < 12; i++) {
    step = i === 11 ? 20 : 1;
    const handle = await written(tracer, sanitizer);
    const { durationMs } = await tracer.sanitize(handle);
    assert.equal(durationMs, step);
    await tracer.free(handle);
  }
  const anomaly = audit.events.find((e) => e.event === "anomaly");
  assert.ok(anomaly, "no anomaly event");
  assert.equal(anomaly.fields.value_ms, 20);
  assert.equal(tracer.metrics().anomalies_total, 1);
});
