/**
 * The metrics document kvh writes as JSON (DESIGN.md §6): every key of the Python tool's
 * `coverage.json` with the same meaning (reference §4.1), then kvh's own.
 *
 * @module
 */
import type { PolicyName, QuarantineReason } from "../tracer/types.ts";

/**
 * How the run that wrote a metrics document ended, in the order a run goes through them:
 *
 * - `running`: written while the run goes on (a long-lived process's periodic snapshot);
 * - `completed`: the workload ran to its end;
 * - `stopped`: a long-lived run was asked to stop and stopped cleanly;
 * - `failed`: the run ended early on an error (bad workload line, device or log failure);
 * - `interrupted`: the run ended early on SIGINT or SIGTERM.
 *
 * `kvh gate` fails documents marked `failed` or `interrupted`: their numbers cover only part of
 * the work. The Python tool's documents have no such key.
 *
 * @example Usage
 * ```ts
 * import { RUN_STATUSES, type RunStatus } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const status: RunStatus = "interrupted";
 * assert.ok(RUN_STATUSES.includes(status));
 * ```
 */
export const RUN_STATUSES = ["running", "completed", "stopped", "failed", "interrupted"] as const;

/** One of {@linkcode RUN_STATUSES}. */
export type RunStatus = typeof RUN_STATUSES[number];

/** Cumulative histogram of scrub durations (Prometheus semantics). */
export interface DurationHistogram {
  /** Upper bounds in seconds with the count of observations ≤ each, ascending, without +Inf. */
  buckets: Array<[le: number, count: number]>;
  /** Sum of all observations in seconds. */
  sum: number;
  /** Number of observations. */
  count: number;
}

/** One metrics document. Snake-case keys: it is a file format shared with the Python tool. */
export interface MetricsSnapshot {
  /** Buffers ever allocated. */
  total_buffers: number;
  /** Buffers neither freed nor quarantined. */
  active_buffers: number;
  /** Buffers holding data not yet scrubbed. */
  unsanitized_regions_count: number;
  /** Buffers quarantined (terminal, so this only grows). */
  quarantine_count: number;
  /**
   * Lowest coverage in percent over every scrub and every free refused for lack of one —
   * failed and unverified scrubs count as 0 (the Python tool skipped them); 0 when none.
   */
  min_coverage_pct: number;
  /** Mean of the same values; 0 when none. */
  avg_coverage_pct: number;
  /** Coverage a free requires, in percent. */
  threshold_pct: number;
  /** Median scrub duration in milliseconds (fractional; the Python tool truncated). */
  sanitize_duration_p50_ms: number;
  /** 95th percentile scrub duration in milliseconds. */
  sanitize_duration_p95_ms: number;
  /** Allocations. */
  allocations: number;
  /** Successful frees. */
  freed_total: number;
  /** Hand-offs of a freed buffer to a new owner. */
  reuse_total: number;
  /** `reuse_total / allocations`, 0 when nothing was allocated. */
  reuse_rate: number;
  /** Version of kvh's additions to this document. */
  kvh_schema: 1;
  /** How the run that wrote the document ended (or `running`). */
  run_status: RunStatus;
  /** False when any scrub was not read back (`--verify none`): the coverage is then unproven. */
  coverage_verified: boolean;
  /** Verification the tracer was configured with. */
  verify_mode: string;
  /** Device of the sanitizer. */
  device: string;
  /** Scrubs performed. */
  sanitize_total: number;
  /** Bytes zeroed, passes included. */
  scrubbed_bytes_total: number;
  /** Quarantines by reason (every reason listed, zeros included). */
  quarantines_by_reason: Record<QuarantineReason, number>;
  /** Policy violations by policy (every policy listed, zeros included). */
  policy_violations_by_policy: Record<PolicyName, number>;
  /** Hand-offs that found another tenant's bytes still in the buffer. */
  leaks_detected_total: number;
  /** Events the forensic log refused. */
  audit_emit_failures_total: number;
  /** Critical events among them. */
  audit_critical_emit_failures_total: number;
  /** Anomalies the scrub-duration monitor reported. */
  anomalies_total: number;
  /** Scrub durations. */
  sanitize_duration_seconds: DurationHistogram;
}
