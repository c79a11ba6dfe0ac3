/**
 * The verdict as a JSON document (`--out`, `--json`, `verdict.json` of an evidence bundle). It is
 * a superset of the Python tool's verdict (reference §5: `pass`, `failures`, `metrics`,
 * `thresholds`, `ts`, `schema`), so scripts that read `eviction_checker`'s output keep working,
 * and adds kvh's `checks`, the `input` and, with `--require-verified`, the log `verification`.
 *
 * @module
 */
import type { VerifyReport } from "../forensic/types.ts";
import type { GateCheck, GateFailure, GateThresholdsRecord, GateVerdict } from "./types.ts";

/** Name of the check that `--require-verified` adds. */
export const LOG_CHECK = "log_verified";

/**
 * Name of the check that fails when the log carries MACs but no key was given, so only its hash
 * chain was verified: anyone who can rewrite the log can recompute the chain, not the MACs.
 */
export const LOG_MAC_CHECK = "log_macs_checked";

/** What {@linkcode addLogCheck} reads of a verification report. */
export type LogCheckReport = VerifyReport & {
  /** Whether any record carries a MAC (from `verifyLog`); absent means unknown, taken as no. */
  mac_present?: boolean;
};

/** Options of {@linkcode addLogCheck}. */
export interface AddLogCheckOptions {
  /**
   * Accept a log whose MACs were not checked (no key): the chain alone decides. Without it such
   * a log fails the {@linkcode LOG_MAC_CHECK} check.
   *
   * @default {false}
   */
  chainOnly?: boolean;
}

/** The verdict document. */
export interface VerdictDocument {
  /** Document version, 1 as in the Python tool. */
  schema: 1;
  /** True when every check passed. */
  pass: boolean;
  /** Failed checks in the Python tool's form. */
  failures: GateFailure[];
  /** The metrics object the values were read from, echoed. */
  metrics: Record<string, unknown>;
  /** The thresholds applied, named as in the Python tool. */
  thresholds: GateThresholdsRecord;
  /** Unix seconds (float) of the evaluation. */
  ts: number;
  /** Every check, one row each. */
  checks: GateCheck[];
  /** Where the metrics came from: a path or a URL. */
  input: string;
  /** The verification report of `--require-verified`, when given. */
  verification?: VerifyReport & { log: string };
}

/**
 * Adds the `log_verified` check to a verdict: it passes only when the log verified. The check is
 * numeric like the others (1 verified, 0 not) so every row has the same shape. When the log
 * carries MACs that were not checked (no key) and `chainOnly` is not set, a failing
 * `log_macs_checked` check follows it.
 *
 * @param verdict The verdict of {@linkcode evaluateGate}.
 * @param report The log's verification report.
 * @param log The log's path, recorded as the check's source.
 * @param options Whether a chain-only check is accepted.
 * @returns A new verdict with the check(s) (and a failure for each that failed).
 *
 * @example Usage
 * ```ts
 * import { addLogCheck, evaluateGate } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const verdict = addLogCheck(
 *   evaluateGate(
 *     { min_coverage_pct: 100, unsanitized_regions_count: 0, quarantine_count: 0 },
 *     { coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 0 },
 *   ),
 *   { ok: false, files: 1, records: 3, head: null, mac_checked: false, failure: null },
 *   "kv_cache.log",
 * );
 * assert.equal(verdict.pass, false);
 * assert.equal(verdict.failures[0]?.metric, "log_verified");
 * ```
 */
export function addLogCheck(
  verdict: GateVerdict,
  report: LogCheckReport,
  log: string,
  options: AddLogCheckOptions = {},
): GateVerdict {
  const checks = [...verdict.checks];
  const failures = [...verdict.failures];
  const add = (name: string, pass: boolean) => {
    checks.push({ name, comparator: ">=", threshold: 1, actual: pass ? 1 : 0, pass, source: log });
    if (!pass) failures.push({ metric: name, actual: 0, expected_min: 1, source: log });
  };
  add(LOG_CHECK, report.ok);
  const unchecked = report.mac_present === true && !report.mac_checked;
  if (unchecked && !options.chainOnly) add(LOG_MAC_CHECK, false);
  return { ...verdict, pass: failures.length === 0, checks, failures };
}

/** Options of {@linkcode verdictDocument}. */
export interface VerdictDocumentOptions {
  /** The metrics object the values were read from. */
  metrics: Record<string, unknown>;
  /** Where the metrics came from. */
  input: string;
  /**
   * Time of the evaluation.
   *
   * @default {new Date()}
   */
  now?: Date;
  /** The log verification, when `--require-verified` was given. */
  verification?: VerifyReport & { log: string };
}

/**
 * Builds the verdict document.
 *
 * @param verdict The verdict.
 * @param options Metrics echo, input, time and verification.
 * @returns The document, ready for `JSON.stringify`.
 *
 * @example Usage
 * ```ts
 * import { evaluateGate, verdictDocument } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const metrics = { min_coverage_pct: 100, unsanitized_regions_count: 0, quarantine_count: 0 };
 * const verdict = evaluateGate(metrics, { coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 0 });
 * const document = verdictDocument(verdict, { metrics, input: "coverage.json", now: new Date(0) });
 * assert.equal(document.pass, true);
 * assert.equal(document.ts, 0);
 * assert.equal(document.schema, 1);
 * ```
 */
export function verdictDocument(
  verdict: GateVerdict,
  options: VerdictDocumentOptions,
): VerdictDocument {
  const { metrics, input, now = new Date(), verification } = options;
  const document: VerdictDocument = {
    schema: 1,
    pass: verdict.pass,
    failures: verdict.failures,
    metrics,
    thresholds: verdict.thresholds,
    ts: now.getTime() / 1000,
    checks: verdict.checks,
    input,
  };
  if (verification !== undefined) document.verification = verification;
  return document;
}
