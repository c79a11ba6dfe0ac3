/**
 * The gate's decision (DESIGN.md §3, `gate`): pure, no I/O, so the file gate and the fleet gate
 * (`--prometheus`) apply exactly the same rules.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import type { RunStatus } from "../metrics/types.ts";
import { THRESHOLDS, thresholdsRecord, thresholdValueProblem } from "./thresholds.ts";
import type { GateCheck, GateFailure, GateMetrics, GateThresholds, GateVerdict } from "./types.ts";

/** Name of the check a metrics document's `run_status` adds. */
export const RUN_STATUS_CHECK = "run_status";

/** The run statuses whose numbers are a result: the run finished, or is a live snapshot. */
export const ACCEPTED_RUN_STATUSES: readonly RunStatus[] = ["completed", "running", "stopped"];

/**
 * Applies thresholds to metrics. Every threshold that is set is checked; minimums pass when the
 * value is equal or above, maximums when it is equal or below.
 *
 * Fails closed: a threshold whose metric is missing, a metric or threshold that is not a value
 * the metric can take (see `thresholdValueProblem`) raises a {@linkcode KvhError} with exit code
 * 1 instead of passing. Metrics with a `run_status` get a `run_status` check that fails for
 * `failed` and `interrupted` (the run ended early; its numbers cover part of the work).
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
  for (const spec of THRESHOLDS) {
    const threshold = thresholds[spec.key];
    if (threshold === undefined) continue;
    const invalid = thresholdValueProblem(spec, threshold);
    if (invalid !== undefined) {
      throw new KvhError("gate_value_invalid", `Invalid threshold ${spec.key}: ${invalid}`);
    }
    const actual = metrics[spec.metric];
    if (actual === undefined) {
      throw new KvhError(
        "gate_metric_missing",
        `Missing metric ${spec.metric}: the ${spec.check} threshold needs it`,
      );
    }
    const problem = thresholdValueProblem(spec, actual);
    if (problem !== undefined) {
      throw new KvhError("gate_value_invalid", `Invalid metric ${spec.metric}: ${problem}`);
    }
    const pass = spec.comparator === ">=" ? actual >= threshold : actual <= threshold;
    const source = metrics.sources?.[spec.metric];
    const check: GateCheck = {
      name: spec.check,
      comparator: spec.comparator,
      threshold,
      actual,
      pass,
    };
    if (source !== undefined) check.source = source;
    checks.push(check);
    if (!pass) {
      const failure: GateFailure = spec.comparator === ">="
        ? { metric: spec.check, actual, expected_min: threshold }
        : { metric: spec.check, actual, expected_max: threshold };
      if (source !== undefined) failure.source = source;
      failures.push(failure);
    }
  }
  if (metrics.run_status !== undefined) {
    // Numeric like every row (1: a result, 0: not); the status itself is the check's source.
    const pass = ACCEPTED_RUN_STATUSES.includes(metrics.run_status);
    checks.push({
      name: RUN_STATUS_CHECK,
      comparator: ">=",
      threshold: 1,
      actual: pass ? 1 : 0,
      pass,
      source: metrics.run_status,
    });
    if (!pass) {
      failures.push({
        metric: RUN_STATUS_CHECK,
        actual: 0,
        expected_min: 1,
        source: metrics.run_status,
      });
    }
  }
  return {
    pass: failures.length === 0,
    checks,
    failures,
    thresholds: thresholdsRecord(thresholds),
  };
}
