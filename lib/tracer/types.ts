/**
 * Public data shapes of the tracer (DESIGN.md §5).
 *
 * @module
 */
import type { AuditSink } from "../forensic/types.ts";
import type { DeviceKind, Sanitizer, VerifyMode } from "../sanitize/types.ts";
import type { AnomalyMonitor } from "../anomaly/anomaly_monitor.ts";

/**
 * Lifecycle states: allocated → in_use → sanitized → freed, or → quarantined (terminal). A freed
 * buffer can be handed to a new owner with {@linkcode CacheTracer.reuse}.
 */
export type BufferState = "allocated" | "in_use" | "sanitized" | "freed" | "quarantined";

/** Policies whose violation quarantines a buffer (label of `kvh_policy_violations_total`). */
export type PolicyName = "ttl" | "max_reuse" | "cross_tenant" | "coverage";

/** Why a buffer was quarantined (label of `kvh_quarantines_total`). */
export type QuarantineReason =
  | "ttl_expired"
  | "reuse_limit_exceeded"
  | "unverified_cross_tenant"
  | "leak_detected"
  | "coverage_below_threshold"
  | "verification_failed"
  | "audit_failed"
  | "operator";

/** Every quarantine reason, so metrics can report zero for each. */
export const QUARANTINE_REASONS: readonly QuarantineReason[] = [
  "ttl_expired",
  "reuse_limit_exceeded",
  "unverified_cross_tenant",
  "leak_detected",
  "coverage_below_threshold",
  "verification_failed",
  "audit_failed",
  "operator",
];

/** Every policy name, so metrics can report zero for each. */
export const POLICY_NAMES: readonly PolicyName[] = ["ttl", "max_reuse", "cross_tenant", "coverage"];

/** Bytes per element of the dtypes a KV cache is stored in. */
export const DTYPE_BYTES: Readonly<Record<string, number>> = Object.freeze({
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float8_e4m3fn: 1,
  float8_e5m2: 1,
  int8: 1,
  uint8: 1,
});

/** The owner of a buffer: who wrote into it. */
export interface BufferOwner {
  /** Tenant identifier (DESIGN.md §5 identifier rules). */
  tenantId: string;
  /** Request identifier. */
  requestId: string;
  /** Model identifier. */
  modelId: string;
}

/** What {@linkcode CacheTracer.allocate} needs. */
export interface AllocateRequest extends BufferOwner {
  /** Tensor shape, e.g. `[2, layers, kv_heads, tokens, head_dim]`; non-negative integers. */
  shape: readonly number[];
  /**
   * Element type, a key of {@linkcode DTYPE_BYTES}.
   *
   * @default {"float16"}
   */
  dtype?: string;
  /**
   * Seconds the buffer may hold data, counted from allocation; `≤ 0` is a violation at first
   * use. Unset: the tracer's default (none).
   */
  ttlSec?: number;
  /**
   * Hand-offs allowed: 0 means any reuse quarantines, negative means unlimited. Unset: the
   * tracer's default.
   */
  maxReuse?: number;
}

/** Options of {@linkcode CacheTracer}. */
export interface CacheTracerOptions {
  /** Backend that holds, zeroes and verifies the buffers. */
  sanitizer: Sanitizer;
  /** Where lifecycle events go: the forensic log, or a test double. */
  audit: AuditSink;
  /**
   * Verified coverage, in percent, a free or hand-off requires.
   *
   * @default {99.9}
   */
  coverageThresholdPct?: number;
  /**
   * Verification of every scrub.
   *
   * @default {"full"}
   */
  verify?: VerifyMode;
  /**
   * Sampled positions in `sample` mode.
   *
   * @default {4096}
   */
  verifySamples?: number;
  /**
   * Zero twice.
   *
   * @default {false}
   */
  doublePass?: boolean;
  /**
   * Default of {@linkcode AllocateRequest.maxReuse}: the Python tool's strict 0.
   *
   * @default {0}
   */
  defaultMaxReuse?: number;
  /** Default of {@linkcode AllocateRequest.ttlSec}; unset means no TTL. */
  defaultTtlSec?: number;
  /** Watches scrub durations and logs anomalies; none when unset. */
  anomalies?: AnomalyMonitor;
  /**
   * Wall clock in milliseconds, for TTLs (tests pass a fake one).
   *
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * Monotonic clock in milliseconds, for scrub durations (and so the anomaly monitor); tests
   * pass a fake one instead of making a scrub slow.
   *
   * @default {performance.now}
   */
  monotonicNow?: () => number;
}

/** Options of one {@linkcode CacheTracer.sanitize} call; unset fields use the tracer's. */
export interface SanitizeOptions {
  /** Verification of this scrub. */
  verify?: VerifyMode;
  /** Zero twice. */
  doublePass?: boolean;
  /** Sampled positions in `sample` mode. */
  samples?: number;
}

/** Outcome of a scrub. */
export interface SanitizeResult {
  /**
   * Share of the checked bytes read back as zero, in percent; 0 when unverified (`none`).
   * A zero-length buffer has 100.
   */
  coveragePct: number;
  /** Whether bytes were read back (`full` or `sample`). */
  verified: boolean;
  /** Verification used. */
  verifyMode: VerifyMode;
  /** Bytes read back. */
  checkedBytes: number;
  /** Bytes read back that were not zero. */
  nonZeroBytes: number;
  /** Bytes zeroed (the buffer size times the passes). */
  scrubbedBytes: number;
  /** Wall time of zeroing, sync and verification, in milliseconds. */
  durationMs: number;
}

/** What the tracer knows about a live buffer (no contents). */
export interface BufferInfo extends BufferOwner {
  /** The buffer's current handle. */
  handle: string;
  /** Lifecycle state. */
  state: BufferState;
  /** Where the buffer lives. */
  device: DeviceKind;
  /** Shape given at allocation. */
  shape: readonly number[];
  /** Element type. */
  dtype: string;
  /** Size in bytes. */
  nbytes: number;
  /** Hand-offs so far. */
  reuseCount: number;
  /** Hand-offs allowed (negative: unlimited). */
  maxReuse: number;
  /** TTL in seconds, or null. */
  ttlSec: number | null;
  /** Verified coverage of the last scrub since the last write, in percent (0: none). */
  coveragePct: number;
}

/** Buffer counts by state, and totals (the gauges of DESIGN.md §6). */
export interface TracerStats {
  /** Buffers ever allocated. */
  totalBuffers: number;
  /** Buffers neither freed nor quarantined. */
  activeBuffers: number;
  /** Buffers holding data not yet scrubbed (allocated or in use). */
  unsanitizedBuffers: number;
  /** Buffers quarantined (terminal; counted for the tracer's whole life). */
  quarantinedBuffers: number;
  /** Buffers freed and waiting for reuse or release. */
  freedBuffers: number;
}
