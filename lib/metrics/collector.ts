/**
 * The metrics collector the tracer feeds (DESIGN.md §6): counters, coverages and scrub
 * durations, turned into a {@linkcode MetricsSnapshot} on demand.
 *
 * @module
 */
import {
  POLICY_NAMES,
  type PolicyName,
  QUARANTINE_REASONS,
  type QuarantineReason,
  type TracerStats,
} from "../tracer/types.ts";
import { percentile } from "./percentile.ts";
import type { MetricsSnapshot, RunStatus } from "./types.ts";

/** Upper bounds, in seconds, of the `kvh_sanitize_duration_seconds` histogram buckets. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.00001,
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Options of {@linkcode MetricsCollector}. */
export interface MetricsCollectorOptions {
  /** Coverage a free requires, in percent. */
  thresholdPct: number;
  /**
   * Verification the tracer uses.
   *
   * @default {"full"}
   */
  verifyMode?: string;
  /**
   * Device of the sanitizer.
   *
   * @default {"cpu"}
   */
  device?: string;
  /**
   * Most scrub durations kept for the p50/p95: past this many the collector keeps a uniform
   * random sample of them all (reservoir sampling), so a daemon that scrubs for days keeps
   * bounded memory and a snapshot stays cheap (it sorts what is kept). The percentiles are
   * then estimates. Unset, every duration is kept and the percentiles are exact.
   *
   * @default {Infinity}
   */
  durationSamples?: number;
}

/** Outcome of one scrub, as the collector needs it. */
export interface ScrubObservation {
  /** Coverage in percent (0 when unverified). */
  coveragePct: number;
  /** Whether the bytes were read back. */
  verified: boolean;
  /** Duration in milliseconds. */
  durationMs: number;
  /** Bytes zeroed, passes included. */
  scrubbedBytes: number;
}

/**
 * Accumulates what the tracer observes. Counters only grow; gauges come from the tracer's
 * {@linkcode TracerStats} at snapshot time.
 *
 * @example Usage
 * ```ts
 * import { MetricsCollector } from "./collector.ts";
 * import assert from "node:assert/strict";
 *
 * const metrics = new MetricsCollector({ thresholdPct: 99.9 });
 * metrics.recordAllocation();
 * metrics.recordScrub({ coveragePct: 100, verified: true, durationMs: 2, scrubbedBytes: 4096 });
 * metrics.recordFree();
 * const snapshot = metrics.snapshot({
 *   totalBuffers: 1, activeBuffers: 0, unsanitizedBuffers: 0, quarantinedBuffers: 0, freedBuffers: 1,
 * });
 * assert.equal(snapshot.min_coverage_pct, 100);
 * assert.equal(snapshot.freed_total, 1);
 * ```
 */
export class MetricsCollector {
  #options: Required<MetricsCollectorOptions>;
  #allocations = 0;
  #frees = 0;
  #reuses = 0;
  #scrubs = 0;
  #scrubbedBytes = 0;
  #leaks = 0;
  #auditFailures = 0;
  #auditCriticalFailures = 0;
  #anomalies = 0;
  #unverified = 0;
  #coverageMin = Infinity;
  #coverageSum = 0;
  #coverageCount = 0;
  #durationsMs = new Float64Array(1024);
  #durationCount = 0;
  #durationSumSeconds = 0;
  #bucketCounts = new Array<number>(DURATION_BUCKETS_SECONDS.length).fill(0);
  #quarantines = Object.fromEntries(QUARANTINE_REASONS.map((r) => [r, 0])) as Record<
    QuarantineReason,
    number
  >;
  #violations = Object.fromEntries(POLICY_NAMES.map((p) => [p, 0])) as Record<PolicyName, number>;

  /**
   * Creates an empty collector.
   *
   * @param options Threshold, verify mode and device to report.
   */
  constructor(options: MetricsCollectorOptions) {
    this.#options = { verifyMode: "full", device: "cpu", durationSamples: Infinity, ...options };
  }

  /** Counts an allocation. */
  recordAllocation(): void {
    this.#allocations++;
  }

  /** Counts a successful free. */
  recordFree(): void {
    this.#frees++;
  }

  /** Counts a hand-off of a freed buffer to a new owner. */
  recordReuse(): void {
    this.#reuses++;
  }

  /**
   * Counts a quarantine.
   *
   * @param reason Why.
   */
  recordQuarantine(reason: QuarantineReason): void {
    this.#quarantines[reason]++;
  }

  /**
   * Counts a policy violation.
   *
   * @param policy Which policy.
   */
  recordPolicyViolation(policy: PolicyName): void {
    this.#violations[policy]++;
  }

  /**
   * Records one scrub: its coverage (0 when unverified) and duration.
   *
   * @param scrub The scrub's outcome.
   */
  recordScrub(scrub: ScrubObservation): void {
    this.#scrubs++;
    this.#scrubbedBytes += scrub.scrubbedBytes;
    if (!scrub.verified) this.#unverified++;
    this.recordCoverage(scrub.verified ? scrub.coveragePct : 0);
    if (this.#durationCount < this.#options.durationSamples) {
      if (this.#durationCount === this.#durationsMs.length) {
        const grown = new Float64Array(this.#durationsMs.length * 2);
        grown.set(this.#durationsMs);
        this.#durationsMs = grown;
      }
      this.#durationsMs[this.#durationCount++] = scrub.durationMs;
    } else {
      // Algorithm R: the n-th duration replaces a kept one with probability kept / n.
      const slot = Math.floor(Math.random() * this.#scrubs);
      if (slot < this.#durationCount) this.#durationsMs[slot] = scrub.durationMs;
    }
    const seconds = scrub.durationMs / 1000;
    this.#durationSumSeconds += seconds;
    const bucket = DURATION_BUCKETS_SECONDS.findIndex((le) => seconds <= le);
    if (bucket >= 0) this.#bucketCounts[bucket]!++;
  }

  /**
   * Records a coverage value that did not come from a scrub (a free refused without one: 0).
   *
   * @param coveragePct Coverage in percent.
   */
  recordCoverage(coveragePct: number): void {
    this.#coverageMin = Math.min(this.#coverageMin, coveragePct);
    this.#coverageSum += coveragePct;
    this.#coverageCount++;
  }

  /** Counts a hand-off that found the previous tenant's bytes. */
  recordLeak(): void {
    this.#leaks++;
  }

  /**
   * Counts an event the forensic log refused.
   *
   * @param critical Whether the event was critical.
   */
  recordAuditFailure(critical: boolean): void {
    this.#auditFailures++;
    if (critical) this.#auditCriticalFailures++;
  }

  /** Counts an anomaly. */
  recordAnomaly(): void {
    this.#anomalies++;
  }

  /**
   * The metrics document now.
   *
   * @param stats The tracer's buffer counts.
   * @param runStatus How the run stands.
   * @returns A fresh snapshot (safe to keep).
   */
  snapshot(stats: TracerStats, runStatus: RunStatus = "running"): MetricsSnapshot {
    const sorted = this.#durationsMs.slice(0, this.#durationCount).sort();
    let cumulative = 0;
    const buckets: Array<[number, number]> = DURATION_BUCKETS_SECONDS.map((le, i) => {
      cumulative += this.#bucketCounts[i]!;
      return [le, cumulative];
    });
    const covered = this.#coverageCount > 0;
    return {
      total_buffers: stats.totalBuffers,
      active_buffers: stats.activeBuffers,
      unsanitized_regions_count: stats.unsanitizedBuffers,
      quarantine_count: stats.quarantinedBuffers,
      min_coverage_pct: covered ? this.#coverageMin : 0,
      avg_coverage_pct: covered ? this.#coverageSum / this.#coverageCount : 0,
      threshold_pct: this.#options.thresholdPct,
      sanitize_duration_p50_ms: percentile(sorted, 50),
      sanitize_duration_p95_ms: percentile(sorted, 95),
      allocations: this.#allocations,
      freed_total: this.#frees,
      reuse_total: this.#reuses,
      reuse_rate: this.#allocations === 0 ? 0 : this.#reuses / this.#allocations,
      kvh_schema: 1,
      run_status: runStatus,
      coverage_verified: this.#unverified === 0,
      verify_mode: this.#options.verifyMode,
      device: this.#options.device,
      sanitize_total: this.#scrubs,
      scrubbed_bytes_total: this.#scrubbedBytes,
      quarantines_by_reason: { ...this.#quarantines },
      policy_violations_by_policy: { ...this.#violations },
      leaks_detected_total: this.#leaks,
      audit_emit_failures_total: this.#auditFailures,
      audit_critical_emit_failures_total: this.#auditCriticalFailures,
      anomalies_total: this.#anomalies,
      sanitize_duration_seconds: {
        buckets,
        sum: this.#durationSumSeconds,
        count: this.#durationCount,
      },
    };
  }
}
