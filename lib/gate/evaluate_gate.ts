/**
 * The gate's decision (DESIGN.md §3, `gate`): pure, no I/O, so the file gate and the fleet gate
 * (`--prometheus`) apply exactly the same rules.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import type {
  GateCheck,
  GateFailure,
  GateMetricName,
  GateMetrics,
  GateThresholds,
  GateVerdict,
} from "./types.ts";

interface CheckSpec {
  name: string;
  metric: GateMetricName;
  comparator: ">=" | "<=";
  threshold: keyof GateThresholds;
  integer: boolean;
}

/** The checks in the Python tool's order (reference §5), so `failures` lists in the same order. */
const CHECKS: readonly CheckSpec[] = [
  {
    name: "coverage_pct",
    metric: "min_coverage_pct",
    comparator: ">=",
    threshold: "coverageMinPct",
    integer: false,
  },
  {
    name: "unsanitized_regions_count",
    metric: "unsanitized_regions_count",
    comparator: "<=",
    threshold: "unsanitizedMax",
    integer: true,
  },
  {
    name: "quarantine_count",
    metric: "quarantine_count",
    comparator: "<=",
    threshold: "quarantineMax",
    integer: true,
  },
  {
    name: "reuse_rate",
    metric: "reuse_rate",
    comparator: "<=",
    threshold: "reuseRateMax",
    integer: false,
  },
  {
    name: "sanitize_duration_p95_ms",
    metric: "sanitize_duration_p95_ms",
    comparator: "<=",
    threshold: "p95MaxMs",
    integer: false,
  },
];

function requireValid(what: string, value: number, integer: boolean): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new KvhError(
      "gate_value_invalid",
      `Invalid ${what}: expected a finite number, got ${value}`,
    );
  }
  if (value < 0) {
    throw new KvhError("gate_value_invalid", `Invalid ${what}: must not be negative, got ${value}`);
  }
  if (integer && !Number.isInteger(value)) {
    throw new KvhError(
      "gate_value_invalid",
      `Invalid ${what}: expected a whole count, got ${value}`,
    );
  }
}

/**
 * Applies thresholds to metrics. Every threshold that is set is checked; minimums pass when the
 * value is equal or above, maximums when it is equal or below.
 *
 * Fails closed: a threshold whose metric is missing, a metric or threshold that is not a finite
 * non-negative number, or a fractional count raises a {@linkcode KvhError} with exit code 1
 * instead of passing.
 *
 * @param metrics The measured values (and optionally where each came from).
 * @param thresholds The thresholds to apply.
 * @returns The verdict: one check per threshold, the failures in the Python tool's form and the
 * thresholds as the Python tool's verdict names them.
 *
 * @example Usage
 * ```ts
 * import { evaluateGate } from "./evaluate_gate.ts";
 * import assert from "node:assert/strict";
 *
 * const verdict = evaluateGate(
 *   { min_coverage_pct: 99.5, unsanitized_regions_count: 0, quarantine_count: 0 },
 *   { coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 0 },
 * );
 * assert.equal(verdict.pass, false);
 * assert.deepEqual(verdict.failures, [
 *   { metric: "coverage_pct", actual: 99.5, expected_min: 99.9 },
 * ]);
 * ```
 */
export function evaluateGate(metrics: GateMetrics, thresholds: GateThresholds): GateVerdict {
  const checks: GateCheck[] = [];
  const failures: GateFailure[] = [];
  for (const spec of CHECKS) {
    const threshold = thresholds[spec.threshold];
    if (threshold === undefined) continue;
    requireValid(`threshold ${spec.threshold}`, threshold, spec.integer);
    const actual = metrics[spec.metric];
    if (actual === undefined) {
      throw new KvhError(
        "gate_metric_missing",
        `Missing metric ${spec.metric}: the ${spec.name} threshold needs it`,
      );
    }
    requireValid(`metric ${spec.metric}`, actual, spec.integer);
    const pass = spec.comparator === ">=" ? actual >= threshold : actual <= threshold;
    const source = metrics.sources?.[spec.metric];
    const check: GateCheck = {
      name: spec.name,
      comparator: spec.comparator,
      threshold,
      actual,
      pass,
    };
    if (source !== undefined) check.source = source;
    checks.push(check);
    if (!pass) {
      const failure: GateFailure = spec.comparator === ">="
        ? { metric: spec.name, actual, expected_min: threshold }
        : { metric: spec.name, actual, expected_max: threshold };
      if (source !== undefined) failure.source = source;
      failures.push(failure);
    }
  }
  return {
    pass: failures.length === 0,
    checks,
    failures,
    thresholds: {
      coverage_pct_min: thresholds.coverageMinPct,
      unsanitized_regions_max: thresholds.unsanitizedMax,
      quarantine_count_max: thresholds.quarantineMax,
      reuse_rate_max: thresholds.reuseRateMax ?? null,
      sanitize_p95_ms_max: thresholds.p95MaxMs ?? null,
    },
  };
}
