import assert from "node:assert/strict";
import { KvhError } from "../../lib/errors.ts";
import {
  parseThresholdText,
  resolveThresholds,
  THRESHOLDS,
  thresholdsRecord,
} from "../../lib/gate/thresholds.ts";

const COVERAGE = THRESHOLDS.find((spec) => spec.key === "coverageMinPct")!;
const QUARANTINE = THRESHOLDS.find((spec) => spec.key === "quarantineMax")!;

Deno.test("parseThresholdText() takes decimal notation only, within the metric's range", () => {
  assert.equal(parseThresholdText(COVERAGE, "100", "--coverage-min"), 100);
  assert.equal(parseThresholdText(COVERAGE, "0.5", "--coverage-min"), 0.5);
  for (const text of ["0x10", "1e2", " 5", "5 ", "", ".5", "5.", "Infinity", "+1", "0b1"]) {
    assert.throws(
      () => parseThresholdText(COVERAGE, text, "--coverage-min"),
      (error: unknown) =>
        error instanceof KvhError && error.code === "flag_invalid" &&
        /expected a decimal number/.test(error.message),
      JSON.stringify(text),
    );
  }
  assert.throws(() => parseThresholdText(COVERAGE, "100.01", "--coverage-min"), /at most 100/);
  assert.throws(() => parseThresholdText(QUARANTINE, "2.5", "--quarantine-max"), /whole number/);
  assert.throws(
    () => parseThresholdText(QUARANTINE, "-1", "KVH_X", "env_invalid"),
    (error: unknown) => error instanceof KvhError && error.code === "env_invalid",
  );
});

Deno.test("resolveThresholds() applies flag > policy > environment > default", () => {
  const none = () => undefined;
  assert.deepEqual(resolveThresholds({ flag: none, env: none }), {
    coverageMinPct: 99.9,
    unsanitizedMax: 0,
    quarantineMax: 0,
  });
  const env = (name: string) => name === "KV_COVERAGE_THRESHOLD" ? "98" : undefined;
  assert.equal(resolveThresholds({ flag: none, env }).coverageMinPct, 98);
  assert.equal(
    resolveThresholds({ flag: none, env, policy: { coverageMinPct: 97 } }).coverageMinPct,
    97,
  );
  const flag = (long: string) => long === "--coverage-min" ? "96" : undefined;
  assert.equal(
    resolveThresholds({ flag, env, policy: { coverageMinPct: 97 } }).coverageMinPct,
    96,
  );
  // A policy null turns an optional check off; a flag turns it back on.
  const p95 = (long: string) => long === "--sanitize-p95-ms-max" ? "50" : undefined;
  assert.equal(
    resolveThresholds({ flag: none, env, policy: { p95MaxMs: null } }).p95MaxMs,
    undefined,
  );
  assert.equal(resolveThresholds({ flag: p95, env, policy: { p95MaxMs: null } }).p95MaxMs, 50);
  // The same value through a flag and its alias is fine; two different ones are not.
  const both = (value: string) => (long: string) =>
    long === "--p95-max-ms" ? "50" : long === "--sanitize-p95-ms-max" ? value : undefined;
  assert.equal(resolveThresholds({ flag: both("50"), env: none }).p95MaxMs, 50);
  assert.throws(() => resolveThresholds({ flag: both("60"), env: none }), /Conflicting/);
});

Deno.test("thresholdsRecord() names every threshold as the Python verdict does", () => {
  assert.deepEqual(thresholdsRecord({ coverageMinPct: 99, unsanitizedMax: 1, quarantineMax: 2 }), {
    coverage_pct_min: 99,
    unsanitized_regions_max: 1,
    quarantine_count_max: 2,
    reuse_rate_max: null,
    sanitize_p95_ms_max: null,
  });
});
