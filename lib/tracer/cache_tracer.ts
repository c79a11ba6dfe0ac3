/**
 * The cache tracer: the lifecycle of KV-cache buffers under the rules of DESIGN.md §5, every
 * step written to the forensic log before it takes effect elsewhere, and nothing reused unless
 * the scrub was proven.
 *
 * @module
 */
import type { AuditSink } from "../forensic/types.ts";
import type { AnomalyMonitor } from "../anomaly/anomaly_monitor.ts";
import { MetricsCollector } from "../metrics/collector.ts";
import type { MetricsSnapshot, RunStatus } from "../metrics/types.ts";
import type { DeviceBuffer, Sanitizer, VerifyMode } from "../sanitize/types.ts";
import {
  AuditEmitError,
  CoverageBelowThresholdError,
  InvalidStateError,
  PolicyViolationError,
  UnknownHandleError,
} from "./errors.ts";
import { newHandle, validateIdentifier } from "./identifiers.ts";
import {
  type AllocateRequest,
  type BufferInfo,
  type BufferOwner,
  type BufferState,
  type CacheTracerOptions,
  DTYPE_BYTES,
  type PolicyName,
  type QuarantineReason,
  type SanitizeOptions,
  type SanitizeResult,
  type TracerStats,
} from "./types.ts";

interface Entry {
  handle: string;
  owner: BufferOwner;
  buffer: DeviceBuffer | null;
  shape: readonly number[];
  dtype: string;
  nbytes: number;
  state: BufferState;
  createdAt: number;
  ttlSec: number | null;
  maxReuse: number;
  reuseCount: number;
  coveragePct: number;
  verified: boolean;
  busy: boolean;
}

type Fields = Record<string, unknown>;

function validateOwner(owner: BufferOwner): BufferOwner {
  return {
    tenantId: validateIdentifier("tenant_id", owner.tenantId),
    requestId: validateIdentifier("request_id", owner.requestId),
    modelId: validateIdentifier("model_id", owner.modelId),
  };
}

function sizeClass(nbytes: number): number {
  return nbytes <= 1 ? 0 : Math.ceil(Math.log2(nbytes));
}

/**
 * Tracks KV-cache buffers from allocation to free, scrubs and verifies them through a
 * {@linkcode Sanitizer}, enforces TTL, reuse and cross-tenant rules, and logs every lifecycle
 * event (identifiers, sizes, coverage, durations, reasons — never contents) to an
 * {@linkcode AuditSink}. Fail-secure: an event the sink refuses fails the operation and
 * quarantines the buffer.
 *
 * @example Usage
 * ```ts
 * import { CacheTracer, CpuSanitizer } from "../../mod.ts";
 * import type { AuditSink, RecordV2 } from "../../lib/forensic/types.ts";
 * import assert from "node:assert/strict";
 *
 * const events: string[] = [];
 * const audit: AuditSink = {
 *   append: (event) => {
 *     events.push(event);
 *     return Promise.resolve({} as RecordV2);
 *   },
 * };
 * const sanitizer = new CpuSanitizer();
 * const tracer = new CacheTracer({ sanitizer, audit, defaultMaxReuse: 4 });
 * const owner = { tenantId: "acme", requestId: "r1", modelId: "llama-3-8b" };
 * const handle = await tracer.allocate({ ...owner, shape: [2, 2, 8, 16, 64], dtype: "float16" });
 * await tracer.markInUse(handle);
 * await sanitizer.fill(tracer.buffer(handle), new TextEncoder().encode("acme"));
 * const result = await tracer.sanitize(handle);
 * assert.equal(result.coveragePct, 100);
 * await tracer.free(handle);
 * const next = await tracer.reuse(handle, { tenantId: "globex", requestId: "r2", modelId: "m" });
 * assert.notEqual(next, handle);
 * await tracer.close();
 * assert.deepEqual(events, ["allocate", "in_use", "sanitize", "free", "reuse"]);
 * ```
 */
export class CacheTracer {
  #sanitizer: Sanitizer;
  #audit: AuditSink;
  #threshold: number;
  #verify: VerifyMode;
  #samples: number;
  #doublePass: boolean;
  #defaultMaxReuse: number;
  #defaultTtlSec: number | null;
  #anomalies: AnomalyMonitor | undefined;
  #now: () => number;
  #monotonicNow: () => number;
  #entries = new Map<string, Entry>();
  #counts: Record<BufferState, number> = {
    allocated: 0,
    in_use: 0,
    sanitized: 0,
    freed: 0,
    quarantined: 0,
  };
  #total = 0;
  #metrics: MetricsCollector;
  #closed = false;
  #durationStreams: string[] = [];

  /**
   * Creates a tracer.
   *
   * @param options Backend, audit sink and policy defaults.
   */
  constructor(options: CacheTracerOptions) {
    const {
      coverageThresholdPct = 99.9,
      verify = "full",
      verifySamples = 4096,
      defaultMaxReuse = 0,
    } = options;
    if (!(coverageThresholdPct >= 0 && coverageThresholdPct <= 100)) {
      throw new RangeError(
        `Invalid coverageThresholdPct: expected 0-100, got ${coverageThresholdPct}`,
      );
    }
    if (!Number.isInteger(verifySamples) || verifySamples < 1) {
      throw new RangeError(
        `Invalid verifySamples: expected a positive integer, got ${verifySamples}`,
      );
    }
    if (!Number.isInteger(defaultMaxReuse)) {
      throw new RangeError(`Invalid defaultMaxReuse: expected an integer, got ${defaultMaxReuse}`);
    }
    if (options.defaultTtlSec !== undefined && !Number.isFinite(options.defaultTtlSec)) {
      throw new RangeError(
        `Invalid defaultTtlSec: expected a number, got ${options.defaultTtlSec}`,
      );
    }
    this.#sanitizer = options.sanitizer;
    this.#audit = options.audit;
    this.#threshold = coverageThresholdPct;
    this.#verify = verify;
    this.#samples = verifySamples;
    this.#doublePass = options.doublePass ?? false;
    this.#defaultMaxReuse = defaultMaxReuse;
    this.#defaultTtlSec = options.defaultTtlSec ?? null;
    this.#anomalies = options.anomalies;
    this.#now = options.now ?? Date.now;
    this.#monotonicNow = options.monotonicNow ?? (() => performance.now());
    this.#metrics = new MetricsCollector({
      thresholdPct: coverageThresholdPct,
      verifyMode: verify,
      device: this.#sanitizer.device,
    });
  }

  /** Coverage a free or hand-off requires, in percent. */
  get coverageThresholdPct(): number {
    return this.#threshold;
  }

  /**
   * Allocates a zero-filled buffer of `shape` × dtype size bytes for an owner.
   *
   * @param request Owner, shape, dtype, TTL and reuse limit.
   * @returns A new unguessable handle (128 random bits, hex).
   */
  async allocate(request: AllocateRequest): Promise<string> {
    this.#checkOpen();
    const owner = validateOwner(request);
    const dtype = request.dtype ?? "float16";
    const elementBytes = DTYPE_BYTES[dtype];
    if (elementBytes === undefined) {
      throw new RangeError(
        `Invalid dtype: expected one of ${Object.keys(DTYPE_BYTES).join(", ")}, got ${dtype}`,
      );
    }
    let nbytes = elementBytes;
    for (const dim of request.shape) {
      if (!Number.isSafeInteger(dim) || dim < 0) {
        throw new RangeError(`Invalid shape: dimensions must be non-negative integers, got ${dim}`);
      }
      nbytes *= dim;
    }
    if (!Number.isSafeInteger(nbytes)) {
      throw new RangeError(`Invalid shape: ${nbytes} bytes is too large`);
    }
    const ttlSec = request.ttlSec ?? this.#defaultTtlSec;
    if (ttlSec !== null && !Number.isFinite(ttlSec)) {
      throw new RangeError(`Invalid ttlSec: expected a number, got ${ttlSec}`);
    }
    const maxReuse = request.maxReuse ?? this.#defaultMaxReuse;
    if (!Number.isInteger(maxReuse)) {
      throw new RangeError(`Invalid maxReuse: expected an integer, got ${maxReuse}`);
    }
    const buffer = await this.#sanitizer.alloc(nbytes);
    const entry: Entry = {
      handle: newHandle(),
      owner,
      buffer,
      shape: [...request.shape],
      dtype,
      nbytes,
      state: "allocated",
      createdAt: this.#now(),
      ttlSec,
      maxReuse,
      reuseCount: 0,
      coveragePct: 0,
      verified: false,
      busy: false,
    };
    try {
      await this.#emit("allocate", entry, {
        shape: entry.shape,
        dtype,
        ttl_sec: ttlSec ?? undefined,
        max_reuse: maxReuse,
      });
    } catch (error) {
      // Never registered and never written to: nothing to quarantine, only memory to return.
      await this.#sanitizer.free(buffer);
      throw error;
    }
    this.#entries.set(entry.handle, entry);
    this.#counts.allocated++;
    this.#total++;
    this.#metrics.recordAllocation();
    return entry.handle;
  }

  /**
   * Marks the buffer in use by its owner (the engine writes into it next). A TTL ≤ 0, or a TTL
   * that expired since allocation, quarantines it.
   *
   * @param handle The buffer's handle.
   * @returns When the event is logged.
   */
  async markInUse(handle: string): Promise<void> {
    await this.#run(handle, "use", ["allocated", "in_use"], async (entry) => {
      await this.#enforceTtl(entry);
      await this.#emit("in_use", entry, {});
      this.#setState(entry, "in_use");
      entry.coveragePct = 0;
      entry.verified = false;
    });
  }

  /**
   * The device buffer of a buffer in use, for the code that writes the KV cache into it.
   *
   * @param handle The buffer's handle.
   * @returns The backend's buffer.
   */
  buffer(handle: string): DeviceBuffer {
    const entry = this.#lookup(handle);
    if (entry.state !== "in_use" || entry.buffer === null) {
      throw new InvalidStateError(handle, entry.state, "write to");
    }
    return entry.buffer;
  }

  /**
   * Scrubs the buffer (one or two passes), waits for the device and verifies the bytes. A
   * verified coverage below the threshold quarantines it.
   *
   * @param handle The buffer's handle.
   * @param options Verification, double pass and samples of this scrub.
   * @returns Coverage, bytes checked and duration.
   */
  sanitize(handle: string, options: SanitizeOptions = {}): Promise<SanitizeResult> {
    return this.#run(handle, "sanitize", ["allocated", "in_use", "sanitized"], async (entry) => {
      const verifyMode = options.verify ?? this.#verify;
      const doublePass = options.doublePass ?? this.#doublePass;
      const samples = options.samples ?? this.#samples;
      const buffer = entry.buffer!;
      const started = this.#monotonicNow();
      let checkedBytes = 0;
      let nonZeroBytes = 0;
      try {
        await this.#sanitizer.zero(buffer, { async: true });
        if (doublePass) await this.#sanitizer.zero(buffer, { async: true });
        await this.#sanitizer.wait();
        if (verifyMode !== "none" && entry.nbytes > 0) {
          const seed = Number.parseInt(entry.handle.slice(0, 8), 16);
          ({ checkedBytes, nonZeroBytes } = await this.#sanitizer.verify(buffer, {
            mode: verifyMode,
            samples,
            seed,
          }));
        }
      } catch (error) {
        await this.#quarantine(entry, "verification_failed", "coverage");
        throw error;
      }
      const durationMs = this.#monotonicNow() - started;
      const verified = verifyMode !== "none" || entry.nbytes === 0;
      let coveragePct = 0;
      if (entry.nbytes === 0) coveragePct = 100;
      else if (verified) coveragePct = ((checkedBytes - nonZeroBytes) / checkedBytes) * 100;
      const result: SanitizeResult = {
        coveragePct,
        verified,
        verifyMode,
        checkedBytes,
        nonZeroBytes,
        scrubbedBytes: entry.nbytes * (doublePass ? 2 : 1),
        durationMs,
      };
      const failed = verified && coveragePct < this.#threshold;
      this.#metrics.recordScrub(result);
      await this.#emit("sanitize", entry, {
        coverage_pct: coveragePct,
        verified,
        verify_mode: verifyMode,
        checked_bytes: checkedBytes,
        nonzero_bytes: nonZeroBytes,
        double_pass: doublePass,
        duration_ms: durationMs,
      }, failed);
      if (failed) {
        await this.#quarantine(entry, "verification_failed", "coverage");
        throw new CoverageBelowThresholdError(handle, coveragePct, this.#threshold);
      }
      this.#setState(entry, "sanitized");
      entry.coveragePct = coveragePct;
      entry.verified = verified;
      await this.#watchDuration(entry, durationMs);
      return result;
    });
  }

  /**
   * Frees the buffer into the tracer's pool, where {@linkcode CacheTracer.reuse} can hand it
   * on. Requires a verified scrub whose coverage reaches the threshold; otherwise the buffer is
   * quarantined and {@linkcode CoverageBelowThresholdError} thrown.
   *
   * @param handle The buffer's handle.
   * @returns When the event is logged.
   */
  async free(handle: string): Promise<void> {
    await this.#run(handle, "free", ["allocated", "in_use", "sanitized"], async (entry) => {
      if (entry.state !== "sanitized") this.#metrics.recordCoverage(0);
      const coverage = entry.verified ? entry.coveragePct : 0;
      if (coverage < this.#threshold || entry.state !== "sanitized") {
        await this.#quarantine(entry, "coverage_below_threshold", "coverage");
        throw new CoverageBelowThresholdError(handle, coverage, this.#threshold);
      }
      await this.#emit("free", entry, { coverage_pct: coverage });
      this.#setState(entry, "freed");
      this.#metrics.recordFree();
    });
  }

  /**
   * Hands a scrubbed (sanitized or freed) buffer to a new owner. Checks the reuse limit and
   * the TTL; a hand-off to another tenant needs a verified scrub and a full read-back that
   * finds no non-zero byte (a leak is a critical event). The old handle is retired.
   *
   * @param handle The buffer's current handle.
   * @param owner The new owner.
   * @returns The buffer's new handle, in state `allocated`.
   */
  async reuse(handle: string, owner: BufferOwner): Promise<string> {
    this.#checkOpen();
    const next = validateOwner(owner);
    return await this.#run(handle, "reuse", ["sanitized", "freed"], async (entry) => {
      const reuseCount = entry.reuseCount + 1;
      if (entry.maxReuse >= 0 && reuseCount > entry.maxReuse) {
        await this.#quarantine(entry, "reuse_limit_exceeded", "max_reuse", {
          reuse_count: reuseCount,
          max_reuse: entry.maxReuse,
        });
        throw new PolicyViolationError(handle, "max_reuse", "reuse_limit_exceeded");
      }
      await this.#enforceTtl(entry);
      const crossTenant = next.tenantId !== entry.owner.tenantId;
      let leakCheck: Fields | undefined;
      if (crossTenant) {
        if (!entry.verified || entry.coveragePct < this.#threshold) {
          await this.#quarantine(entry, "unverified_cross_tenant", "cross_tenant");
          throw new PolicyViolationError(handle, "cross_tenant", "unverified_cross_tenant");
        }
        const check = entry.nbytes === 0
          ? { checkedBytes: 0, nonZeroBytes: 0 }
          : await this.#sanitizer.verify(entry.buffer!, { mode: "full" });
        leakCheck = { checked_bytes: check.checkedBytes, nonzero_bytes: check.nonZeroBytes };
        if (check.nonZeroBytes > 0) {
          this.#metrics.recordLeak();
          await this.#emit("leak_detected", entry, {
            ...leakCheck,
            next_tenant_id: next.tenantId,
          }, true).catch(() => {});
          await this.#quarantine(entry, "leak_detected", "cross_tenant");
          throw new PolicyViolationError(handle, "cross_tenant", "leak_detected");
        }
      }
      const previous = { handle: entry.handle, owner: entry.owner };
      const newHandle_ = newHandle();
      await this.#emit("reuse", { handle: newHandle_, owner: next, nbytes: entry.nbytes }, {
        previous_handle: previous.handle,
        previous_tenant_id: previous.owner.tenantId,
        previous_request_id: previous.owner.requestId,
        reuse_count: reuseCount,
        max_reuse: entry.maxReuse,
        cross_tenant: crossTenant,
        leak_check: leakCheck,
      });
      this.#entries.delete(previous.handle);
      entry.handle = newHandle_;
      entry.owner = next;
      entry.reuseCount = reuseCount;
      this.#entries.set(newHandle_, entry);
      this.#setState(entry, "allocated");
      this.#metrics.recordReuse();
      return newHandle_;
    });
  }

  /**
   * Returns a freed buffer's memory to the backend and retires its handle.
   *
   * @param handle The buffer's handle.
   * @returns When the event is logged and the memory released.
   */
  async release(handle: string): Promise<void> {
    await this.#run(handle, "release", ["freed"], async (entry) => {
      await this.#emit("release", entry, {});
      await this.#sanitizer.free(entry.buffer!);
      entry.buffer = null;
      this.#entries.delete(handle);
      this.#counts.freed--;
    });
  }

  /**
   * Quarantines a buffer on an operator's decision (terminal: never used again).
   *
   * @param handle The buffer's handle.
   * @param note Free text for the log (no secrets).
   * @returns When the event is logged.
   */
  async quarantine(handle: string, note = "operator"): Promise<void> {
    await this.#run(
      handle,
      "quarantine",
      ["allocated", "in_use", "sanitized", "freed"],
      (entry) => {
        return this.#quarantine(entry, "operator", null, { note: note.slice(0, 200) });
      },
    );
  }

  /**
   * What the tracer knows about a buffer.
   *
   * @param handle The buffer's handle.
   * @returns Owner, state, size and policy of the buffer.
   */
  info(handle: string): BufferInfo {
    const entry = this.#lookup(handle);
    return {
      ...entry.owner,
      handle: entry.handle,
      state: entry.state,
      device: this.#sanitizer.device,
      shape: entry.shape,
      dtype: entry.dtype,
      nbytes: entry.nbytes,
      reuseCount: entry.reuseCount,
      maxReuse: entry.maxReuse,
      ttlSec: entry.ttlSec,
      coveragePct: entry.coveragePct,
    };
  }

  /**
   * Buffer counts by state.
   *
   * @returns The gauges of DESIGN.md §6.
   */
  stats(): TracerStats {
    const c = this.#counts;
    return {
      totalBuffers: this.#total,
      activeBuffers: c.allocated + c.in_use + c.sanitized,
      unsanitizedBuffers: c.allocated + c.in_use,
      quarantinedBuffers: c.quarantined,
      freedBuffers: c.freed,
    };
  }

  /**
   * The metrics document (DESIGN.md §6) as of now.
   *
   * @param runStatus How the caller's run stands, written into the document.
   * @returns A snapshot to export as JSON or Prometheus text.
   */
  metrics(runStatus?: RunStatus): MetricsSnapshot {
    return this.#metrics.snapshot(this.stats(), runStatus);
  }

  /**
   * Releases every freed buffer, flushes the sink when it can be flushed, and refuses further
   * allocations. Buffers still active stay counted as such in the metrics: they were never
   * proven clean.
   *
   * @returns When the buffers are released and the sink flushed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of [...this.#entries.values()]) {
      if (entry.state === "freed" && !entry.busy) await this.release(entry.handle);
    }
    const sink = this.#audit as AuditSink & { flush?: () => Promise<void> };
    if (typeof sink.flush === "function") await sink.flush();
  }

  #checkOpen(): void {
    if (this.#closed) throw new TypeError("Cannot use tracer: it is closed");
  }

  #lookup(handle: string): Entry {
    const entry = typeof handle === "string" ? this.#entries.get(handle) : undefined;
    if (entry === undefined) throw new UnknownHandleError(String(handle));
    return entry;
  }

  async #run<T>(
    handle: string,
    operation: string,
    allowed: readonly BufferState[],
    body: (entry: Entry) => Promise<T>,
  ): Promise<T> {
    const entry = this.#lookup(handle);
    if (entry.busy) throw new InvalidStateError(handle, "busy", operation);
    if (!allowed.includes(entry.state)) throw new InvalidStateError(handle, entry.state, operation);
    entry.busy = true;
    try {
      return await body(entry);
    } catch (error) {
      if (error instanceof AuditEmitError && entry.state !== "quarantined") {
        await this.#quarantine(entry, "audit_failed", null);
      }
      throw error;
    } finally {
      entry.busy = false;
    }
  }

  // TTL counts from allocation (the Python tool counted from first use and only checked it in
  // mark_in_use, so an expired buffer was never caught unless written again).
  async #enforceTtl(entry: Entry): Promise<void> {
    if (entry.ttlSec === null) return;
    const ageSec = (this.#now() - entry.createdAt) / 1000;
    if (entry.ttlSec > 0 && ageSec <= entry.ttlSec) return;
    await this.#quarantine(entry, "ttl_expired", "ttl", { ttl_sec: entry.ttlSec, age_sec: ageSec });
    throw new PolicyViolationError(entry.handle, "ttl", "ttl_expired");
  }

  #setState(entry: Entry, state: BufferState): void {
    this.#counts[entry.state]--;
    this.#counts[state]++;
    entry.state = state;
  }

  // Absent fields are left out of the record (undefined), never written as null.
  async #emit(
    event: string,
    entry: Pick<Entry, "handle" | "owner" | "nbytes">,
    fields: Fields,
    critical = false,
  ): Promise<void> {
    try {
      await this.#audit.append(event, {
        handle: entry.handle,
        tenant_id: entry.owner.tenantId,
        request_id: entry.owner.requestId,
        model_id: entry.owner.modelId,
        device: this.#sanitizer.device,
        nbytes: entry.nbytes,
        ...fields,
      }, { critical });
    } catch (error) {
      this.#metrics.recordAuditFailure(critical);
      throw new AuditEmitError(event, error);
    }
  }

  // The state changes first, so the buffer is out of circulation even when the log refuses
  // the quarantine event; the memory is zeroed (best effort) and returned, never reused.
  async #quarantine(
    entry: Entry,
    reason: QuarantineReason,
    policy: PolicyName | null,
    extra: Fields = {},
  ): Promise<void> {
    this.#setState(entry, "quarantined");
    this.#metrics.recordQuarantine(reason);
    if (policy !== null) this.#metrics.recordPolicyViolation(policy);
    let scrubbed = false;
    if (entry.buffer !== null) {
      try {
        await this.#sanitizer.zero(entry.buffer);
        await this.#sanitizer.wait();
        scrubbed = true;
        await this.#sanitizer.free(entry.buffer);
      } catch {
        // The buffer is already out of circulation; a failing device cannot change that.
      }
      entry.buffer = null;
    }
    await this.#emit("quarantine", entry, {
      reason,
      policy: policy ?? undefined,
      scrubbed,
      ...extra,
    }, true)
      .catch(() => {});
  }

  /** The anomaly stream of a buffer size: one string per size class, not one per scrub. */
  #durationStream(nbytes: number): string {
    const size = sizeClass(nbytes);
    let stream = this.#durationStreams[size];
    if (stream === undefined) {
      stream = `sanitize_ms:${this.#sanitizer.device}:2^${size}`;
      this.#durationStreams[size] = stream;
    }
    return stream;
  }

  async #watchDuration(entry: Entry, durationMs: number): Promise<void> {
    if (this.#anomalies === undefined) return;
    const stream = this.#durationStream(entry.nbytes);
    const verdict = this.#anomalies.observe(stream, durationMs);
    if (!verdict.anomalous) return;
    this.#metrics.recordAnomaly();
    if (!verdict.report) return;
    await this.#emit("anomaly", entry, {
      stream,
      rule: verdict.rule,
      value_ms: durationMs,
      baseline_mean_ms: verdict.baselineMean,
      baseline_std_ms: verdict.baselineStd,
      z: verdict.z,
      suppressed: verdict.suppressed,
    });
  }
}
