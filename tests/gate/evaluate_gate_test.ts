import assert from "node:assert/strict";
import fc from "fast-check";
import { evaluateGate } from "../../lib/gate/evaluate_gate.ts";
import type { GateMetrics, GateThresholds } from "../../lib/gate/types.ts";
import { KvhError } from "../../lib/errors.ts";

const STRICT: GateThresholds = { coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 0 };
const CLEAN: GateMetrics = {
  min_coverage_pct: 100,
  unsanitized_regions_count: 0,
  quarantine_count: 0,
  sanitize_duration_p95_ms: 49,
  reuse_rate: 0,
};

function assertKvhError(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof KvhError);
    assert.equal(error.code, code);
    assert.equal(error.exitCode, 1);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("evaluateGate() passes clean metrics with one check per threshold", () => {
  const verdict = evaluateGate(CLEAN, STRICT);
  assert.equal(verdict.pass, true);
  assert.deepEqual(verdict.failures, []);
  assert.deepEqual(
    verdict.checks.map((check) => [check.name, check.comparator, check.threshold, check.actual]),
    [
      ["coverage_pct", ">=", 99.9, 100],
      ["unsanitized_regions_count", "<=", 0, 0],
      ["quarantine_count", "<=", 0, 0],
    ],
  );
  assert.deepEqual(verdict.thresholds, {
    coverage_pct_min: 99.9,
    unsanitized_regions_max: 0,
    quarantine_count_max: 0,
    reuse_rate_max: null,
    sanitize_p95_ms_max: null,
  });
});

Deno.test("evaluateGate() passes at exact boundaries", () => {
  const verdict = evaluateGate(
    {
      min_coverage_pct: 99.9,
      unsanitized_regions_count: 2,
      quarantine_count: 1,
      reuse_rate: 0.5,
      sanitize_duration_p95_ms: 10,
    },
    { coverageMinPct: 99.9, unsanitizedMax: 2, quarantineMax: 1, reuseRateMax: 0.5, p95MaxMs: 10 },
  );
  assert.equal(verdict.pass, true);
  assert.equal(verdict.checks.length, 5);
});

Deno.test("evaluateGate() reports each failing threshold in the Python tool's form", () => {
  const verdict = evaluateGate(
    {
      min_coverage_pct: 99.8,
      unsanitized_regions_count: 1,
      quarantine_count: 2,
      reuse_rate: 0.6,
      sanitize_duration_p95_ms: 11,
    },
    { coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 1, reuseRateMax: 0.5, p95MaxMs: 10 },
  );
  assert.equal(verdict.pass, false);
  assert.deepEqual(verdict.failures, [
    { metric: "coverage_pct", actual: 99.8, expected_min: 99.9 },
    { metric: "unsanitized_regions_count", actual: 1, expected_max: 0 },
    { metric: "quarantine_count", actual: 2, expected_max: 1 },
    { metric: "reuse_rate", actual: 0.6, expected_max: 0.5 },
    { metric: "sanitize_duration_p95_ms", actual: 11, expected_max: 10 },
  ]);
  assert.ok(verdict.checks.every((check) => !check.pass));
});

Deno.test("evaluateGate() copies the source of a value into its check and failure", () => {
  const verdict = evaluateGate(
    { ...CLEAN, quarantine_count: 3, sources: { quarantine_count: "node-7" } },
    STRICT,
  );
  assert.equal(verdict.checks[2]?.source, "node-7");
  assert.deepEqual(verdict.failures, [
    { metric: "quarantine_count", actual: 3, expected_max: 0, source: "node-7" },
  ]);
});

Deno.test("evaluateGate() refuses a missing metric that a threshold needs", () => {
  assertKvhError(
    () => evaluateGate({ min_coverage_pct: 100, unsanitized_regions_count: 0 }, STRICT),
    "gate_metric_missing",
    /quarantine_count/,
  );
  const { sanitize_duration_p95_ms: _dropped, ...withoutP95 } = CLEAN;
  assertKvhError(
    () => evaluateGate(withoutP95, { ...STRICT, p95MaxMs: 5 }),
    "gate_metric_missing",
    /sanitize_duration_p95_ms/,
  );
});

Deno.test("evaluateGate() checks an optional metric only when its threshold is set", () => {
  const verdict = evaluateGate({ ...CLEAN, reuse_rate: 9 }, STRICT);
  assert.equal(verdict.pass, true);
});

Deno.test("evaluateGate() refuses NaN, infinite, negative, fractional and impossible values", () => {
  const bad: Array<[GateMetrics, RegExp]> = [
    [{ ...CLEAN, min_coverage_pct: NaN }, /min_coverage_pct: must be finite/],
    [{ ...CLEAN, min_coverage_pct: Infinity }, /min_coverage_pct: must be finite/],
    [{ ...CLEAN, min_coverage_pct: 100.5 }, /min_coverage_pct: must be at most 100, got 100\.5/],
    [{ ...CLEAN, quarantine_count: -1 }, /quarantine_count: must not be negative/],
    [{ ...CLEAN, unsanitized_regions_count: 0.5 }, /unsanitized_regions_count: must be a whole/],
  ];
  for (const [metrics, pattern] of bad) {
    assertKvhError(() => evaluateGate(metrics, STRICT), "gate_value_invalid", pattern);
  }
  assertKvhError(
    () => evaluateGate(CLEAN, { ...STRICT, quarantineMax: 0.5 }),
    "gate_value_invalid",
    /threshold quarantineMax/,
  );
});

Deno.test("evaluateGate() passes exactly when every value is within its threshold", () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 100, noNaN: true }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      fc.nat(5),
      fc.nat(5),
      (coverage, minimum, quarantined, maxQuarantined) => {
        const verdict = evaluateGate(
          { ...CLEAN, min_coverage_pct: coverage, quarantine_count: quarantined },
          { ...STRICT, coverageMinPct: minimum, quarantineMax: maxQuarantined },
        );
        assert.equal(verdict.pass, coverage >= minimum && quarantined <= maxQuarantined);
        assert.equal(verdict.failures.length, verdict.checks.filter((c) => !c.pass).length);
      },
    ),
    { seed: 4242, numRuns: 300 },
  );
});

Deno.test("evaluateGate() fails a failed or interrupted run and accepts the others", () => {
  for (const status of ["failed", "interrupted"] as const) {
    const verdict = evaluateGate({ ...CLEAN, run_status: status }, STRICT);
    assert.equal(verdict.pass, false, status);
    assert.deepEqual(verdict.failures, [
      { metric: "run_status", actual: 0, expected_min: 1, source: status },
    ]);
    assert.equal(verdict.checks.at(-1)?.source, status);
  }
  for (const status of ["completed", "running", "stopped"] as const) {
    const verdict = evaluateGate({ ...CLEAN, run_status: status }, STRICT);
    assert.equal(verdict.pass, true, status);
    assert.equal(verdict.checks.at(-1)?.name, "run_status");
  }
  // The Python tool's files have no run_status: no check, judged as before.
  assert.ok(!evaluateGate(CLEAN, STRICT).checks.some((check) => check.name === "run_status"));
});
