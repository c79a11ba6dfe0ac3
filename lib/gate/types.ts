/**
 * Public data shapes of the gate (DESIGN.md §3, `gate`): thresholds, the metrics they apply to,
 * and the verdict. The verdict keeps the Python tool's `failures` and `thresholds` objects
 * (reference §5) so scripts that parsed `eviction_checker`'s verdict keep working.
 *
 * @module
 */
import type { RunStatus } from "../metrics/types.ts";

/** Thresholds the gate applies. Optional ones are checked only when set. */
export interface GateThresholds {
  /** Minimum `min_coverage_pct` in percent; equal passes. */
  coverageMinPct: number;
  /** Maximum `unsanitized_regions_count`; equal passes. */
  unsanitizedMax: number;
  /** Maximum `quarantine_count`; equal passes. */
  quarantineMax: number;
  /** Maximum `sanitize_duration_p95_ms`, when set. */
  p95MaxMs?: number;
  /** Maximum `reuse_rate` (reuses per allocation), when set. */
  reuseRateMax?: number;
}

/** Names of the metrics the gate reads, as the Python tool's `coverage.json` spells them. */
export type GateMetricName =
  | "min_coverage_pct"
  | "unsanitized_regions_count"
  | "quarantine_count"
  | "sanitize_duration_p95_ms"
  | "reuse_rate";

/**
 * The metric values the gate reads. A value a threshold needs must be present: a missing one is
 * an error, never a pass.
 */
export interface GateMetrics {
  /** Lowest verified scrub coverage over all buffers, in percent. */
  min_coverage_pct?: number;
  /** Buffers not (yet) scrubbed. */
  unsanitized_regions_count?: number;
  /** Buffers in quarantine. */
  quarantine_count?: number;
  /** 95th percentile of scrub duration in milliseconds. */
  sanitize_duration_p95_ms?: number;
  /** Reuses per allocation. */
  reuse_rate?: number;
  /**
   * How the run that wrote the metrics ended (kvh's metrics; the Python tool's have none):
   * `failed` and `interrupted` fail the gate, their numbers cover only part of the work.
   */
  run_status?: RunStatus;
  /**
   * Where each value came from, e.g. the node that reported the worst value in a fleet; copied
   * into the matching {@linkcode GateCheck.source}.
   */
  sources?: Partial<Record<GateMetricName, string>>;
}

/** One evaluated threshold: a row of the gate's output. */
export interface GateCheck {
  /** Check name: the Python tool's `metric` name (`coverage_pct`, `quarantine_count`, …). */
  name: string;
  /** `>=` for a minimum, `<=` for a maximum. */
  comparator: ">=" | "<=";
  /** The threshold. */
  threshold: number;
  /** The measured value. */
  actual: number;
  /** Whether `actual comparator threshold` holds. */
  pass: boolean;
  /** Where the worst value came from, e.g. a node. */
  source?: string;
}

/**
 * A failed check in the Python tool's verdict form (reference §5): `expected_min` for a minimum,
 * `expected_max` for a maximum.
 */
export interface GateFailure {
  /** Check name, e.g. `coverage_pct`. */
  metric: string;
  /** The measured value. */
  actual: number;
  /** The minimum that was not met. */
  expected_min?: number;
  /** The maximum that was exceeded. */
  expected_max?: number;
  /** Where the value came from, when known. */
  source?: string;
}

/** The thresholds as the Python tool's verdict names them; `null` means not checked. */
export interface GateThresholdsRecord {
  /** Minimum coverage in percent. */
  coverage_pct_min: number;
  /** Maximum unsanitized buffers. */
  unsanitized_regions_max: number;
  /** Maximum quarantined buffers. */
  quarantine_count_max: number;
  /** Maximum reuse rate, or null. */
  reuse_rate_max: number | null;
  /** Maximum p95 scrub duration in milliseconds, or null. */
  sanitize_p95_ms_max: number | null;
}

/** Outcome of {@linkcode evaluateGate}. */
export interface GateVerdict {
  /** True when every check passed. */
  pass: boolean;
  /** Every check, in the Python tool's order. */
  checks: GateCheck[];
  /** The failed checks in the Python tool's form. */
  failures: GateFailure[];
  /** The thresholds applied. */
  thresholds: GateThresholdsRecord;
}
