/**
 * The gate's thresholds, once (issue 10 item 3): one row per threshold names its flag, its
 * environment variable, its policy-file and verdict key, its `GateThresholds` field, the metric
 * it applies to, the check it becomes and the values it can take. The flag table, the policy
 * reader, the metrics reader, the evaluation and the verdict all read this table, and every
 * number goes through {@linkcode thresholdValueProblem} (lib/config/parse_decimal.ts, shared with
 * every other numeric setting), so a value means the same wherever it is written.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import { type DecimalBounds, decimalProblem, parseDecimal } from "../config/parse_decimal.ts";
import type { GateMetricName, GateThresholds, GateThresholdsRecord } from "./types.ts";

/** One threshold in every spelling. */
export interface ThresholdSpec {
  /** Field of {@linkcode GateThresholds}. */
  key: keyof GateThresholds;
  /** The check's name in the verdict (the Python tool's `metric` name). */
  check: string;
  /** The metric the threshold applies to. */
  metric: GateMetricName;
  /** `>=` for a minimum, `<=` for a maximum. */
  comparator: ">=" | "<=";
  /** Key in a policy file and in the verdict's `thresholds` (the Python verdict's name). */
  policyKey: keyof GateThresholdsRecord;
  /** Long flags; the first is the main one, the others aliases (the Python tool's names). */
  flags: readonly string[];
  /** Environment variable read when neither a flag nor the policy sets it. */
  env?: string;
  /** Value when nothing sets it; absent means the check is off unless set. */
  default?: number;
  /** Whether values are whole counts. */
  integer: boolean;
  /** Largest value the metric can take, and so the threshold. */
  max: number;
  /** Name of the flag's value in help. */
  valueName: string;
  /** What the threshold is, for help. */
  help: string;
}

/** Every threshold, in the Python tool's check order (reference §5). */
export const THRESHOLDS: readonly ThresholdSpec[] = [
  {
    key: "coverageMinPct",
    check: "coverage_pct",
    metric: "min_coverage_pct",
    comparator: ">=",
    policyKey: "coverage_pct_min",
    flags: ["--coverage-min"],
    env: "KV_COVERAGE_THRESHOLD",
    default: 99.9,
    integer: false,
    max: 100,
    valueName: "pct",
    help: "minimum min_coverage_pct in percent, 0 to 100; equal passes",
  },
  {
    key: "unsanitizedMax",
    check: "unsanitized_regions_count",
    metric: "unsanitized_regions_count",
    comparator: "<=",
    policyKey: "unsanitized_regions_max",
    flags: ["--unsanitized-max"],
    default: 0,
    integer: true,
    max: Number.MAX_SAFE_INTEGER,
    valueName: "n",
    help: "maximum unsanitized_regions_count",
  },
  {
    key: "quarantineMax",
    check: "quarantine_count",
    metric: "quarantine_count",
    comparator: "<=",
    policyKey: "quarantine_count_max",
    flags: ["--quarantine-max"],
    default: 0,
    integer: true,
    max: Number.MAX_SAFE_INTEGER,
    valueName: "n",
    help: "maximum quarantine_count",
  },
  {
    key: "reuseRateMax",
    check: "reuse_rate",
    metric: "reuse_rate",
    comparator: "<=",
    policyKey: "reuse_rate_max",
    flags: ["--reuse-rate-max"],
    integer: false,
    max: Number.MAX_VALUE,
    valueName: "rate",
    help: "maximum reuse_rate",
  },
  {
    key: "p95MaxMs",
    check: "sanitize_duration_p95_ms",
    metric: "sanitize_duration_p95_ms",
    comparator: "<=",
    policyKey: "sanitize_p95_ms_max",
    flags: ["--p95-max-ms", "--sanitize-p95-ms-max"],
    integer: false,
    max: Number.MAX_VALUE,
    valueName: "ms",
    help: "maximum sanitize_duration_p95_ms",
  },
];

/**
 * The row of one threshold, e.g. for another command that takes the same value (`kvh trace
 * --coverage-threshold` is a coverage percentage like `--coverage-min`).
 *
 * @param key The threshold's field in `GateThresholds`.
 * @returns Its row of {@linkcode THRESHOLDS}.
 *
 * @example Usage
 * ```ts
 * import { thresholdSpec } from "./thresholds.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(thresholdSpec("coverageMinPct").max, 100);
 * ```
 */
export function thresholdSpec(key: keyof GateThresholds): ThresholdSpec {
  return THRESHOLDS.find((spec) => spec.key === key)!;
}

/** The bounds of a threshold's values: from 0 to the spec's `max`, whole for counts. */
function boundsOf(spec: ThresholdSpec): DecimalBounds {
  return { integer: spec.integer, min: 0, max: spec.max };
}

/**
 * What is wrong with a value for a threshold or its metric, or `undefined` when nothing is: it
 * must be a finite number from 0 to the spec's `max`, whole for counts.
 *
 * @param spec The threshold.
 * @param value The value as parsed (any JSON value).
 * @returns A phrase such as `must be at most 100, got 150`, or `undefined`.
 *
 * @example Usage
 * ```ts
 * import { THRESHOLDS, thresholdValueProblem } from "./thresholds.ts";
 * import assert from "node:assert/strict";
 *
 * const coverage = THRESHOLDS[0]!;
 * assert.equal(thresholdValueProblem(coverage, 99.9), undefined);
 * assert.equal(thresholdValueProblem(coverage, 150), "must be at most 100, got 150");
 * ```
 */
export function thresholdValueProblem(spec: ThresholdSpec, value: unknown): string | undefined {
  return decimalProblem(value, boundsOf(spec));
}

/**
 * Parses a threshold written as text (a flag or an environment variable): decimal notation
 * only, then {@linkcode thresholdValueProblem}.
 *
 * @param spec The threshold.
 * @param text The text as given.
 * @param where The flag or variable, for the message, e.g. `--coverage-min`.
 * @param code The error code: `flag_invalid` for a flag, `env_invalid` for a variable.
 * @returns The value.
 * @throws {KvhError} With `code` (exit 1), naming `where`.
 *
 * @example Usage
 * ```ts
 * import { parseThresholdText, THRESHOLDS } from "./thresholds.ts";
 * import assert from "node:assert/strict";
 *
 * const coverage = THRESHOLDS[0]!;
 * assert.equal(parseThresholdText(coverage, "99.5", "--coverage-min"), 99.5);
 * assert.throws(() => parseThresholdText(coverage, "0x10", "--coverage-min"), /expected a decimal number/);
 * ```
 */
export function parseThresholdText(
  spec: ThresholdSpec,
  text: string,
  where: string,
  code: "flag_invalid" | "env_invalid" = "flag_invalid",
): number {
  return parseDecimal(text, boundsOf(spec), where, code);
}

/**
 * The thresholds in the verdict's (and a policy file's) names; `null` for a check that is off.
 *
 * @param thresholds The thresholds applied.
 * @returns The record, keys in table order.
 *
 * @example Usage
 * ```ts
 * import { thresholdsRecord } from "./thresholds.ts";
 * import assert from "node:assert/strict";
 *
 * const record = thresholdsRecord({ coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 0 });
 * assert.equal(record.sanitize_p95_ms_max, null);
 * ```
 */
export function thresholdsRecord(thresholds: GateThresholds): GateThresholdsRecord {
  const record: Record<string, number | null> = {};
  for (const spec of THRESHOLDS) record[spec.policyKey] = thresholds[spec.key] ?? null;
  return record as unknown as GateThresholdsRecord;
}

/** Where {@linkcode resolveThresholds} looks, highest precedence first. */
export interface ThresholdSources {
  /** The value of a flag as given, or `undefined` when it was not given. */
  flag(long: string): string | undefined;
  /** What a policy file sets: a value, `null` for a check turned off, absent for nothing. */
  policy?: { [K in keyof GateThresholds]?: number | null };
  /** An environment variable, or `undefined` when unset. */
  env(name: string): string | undefined;
}

/**
 * Resolves every threshold as flag > policy > environment > default, each value checked with
 * the same rules wherever it came from.
 *
 * @param sources The flags, the policy and the environment.
 * @returns The thresholds; an optional check that nothing set is absent.
 * @throws {KvhError} `flag_invalid` for a bad or conflicting flag, `env_invalid` for a bad
 * variable (exit 1).
 *
 * @example Usage
 * ```ts
 * import { resolveThresholds } from "./thresholds.ts";
 * import assert from "node:assert/strict";
 *
 * const flags: Record<string, string> = { "--quarantine-max": "2" };
 * const thresholds = resolveThresholds({
 *   flag: (long) => flags[long],
 *   policy: { unsanitizedMax: 1 },
 *   env: (name) => name === "KV_COVERAGE_THRESHOLD" ? "99.5" : undefined,
 * });
 * assert.deepEqual(thresholds, { coverageMinPct: 99.5, unsanitizedMax: 1, quarantineMax: 2 });
 * ```
 */
export function resolveThresholds(sources: ThresholdSources): GateThresholds {
  const thresholds: Partial<Record<keyof GateThresholds, number>> = {};
  for (const spec of THRESHOLDS) {
    let value: number | null | undefined;
    let from: string | undefined;
    for (const long of spec.flags) {
      const text = sources.flag(long);
      if (text === undefined) continue;
      const parsed = parseThresholdText(spec, text, long);
      if (value !== undefined && value !== parsed) {
        throw new KvhError(
          "flag_invalid",
          `Conflicting ${from} ${value} and ${long} ${parsed}: give one`,
        );
      }
      value = parsed;
      from = long;
    }
    value ??= sources.policy?.[spec.key];
    if (value === undefined && spec.env !== undefined) {
      const text = sources.env(spec.env);
      if (text !== undefined && text !== "") {
        value = parseThresholdText(spec, text, spec.env, "env_invalid");
      }
    }
    value ??= spec.default;
    if (value !== undefined && value !== null) thresholds[spec.key] = value;
  }
  return thresholds as GateThresholds;
}
