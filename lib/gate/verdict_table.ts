/**
 * The verdict as the table `kvh gate` prints: one row per check, the reasons a log or run check
 * failed, then `verdict: PASS|FAIL`.
 *
 * @module
 */
import { ACCEPTED_RUN_STATUSES, RUN_STATUS_CHECK } from "./evaluate_gate.ts";
import { LOG_CHECK, LOG_MAC_CHECK, type VerdictDocument } from "./verdict_document.ts";

function formatValue(name: string, value: number): string {
  if (name === LOG_CHECK) return value === 1 ? "verified" : "not verified";
  if (name === LOG_MAC_CHECK) return value === 1 ? "checked" : "not checked (no key)";
  if (name === RUN_STATUS_CHECK) return value === 1 ? ACCEPTED_RUN_STATUSES.join("|") : "other";
  return String(value);
}

/**
 * Renders a verdict document as a table.
 *
 * @param document The verdict document.
 * @param color Paint pass and FAIL green and red.
 * @returns The table, without a final newline.
 *
 * @example Usage
 * ```ts
 * import { evaluateGate, verdictDocument } from "./mod.ts";
 * import { renderVerdictTable } from "./verdict_table.ts";
 * import assert from "node:assert/strict";
 *
 * const metrics = { min_coverage_pct: 100, unsanitized_regions_count: 0, quarantine_count: 1 };
 * const verdict = evaluateGate(metrics, { coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 0 });
 * const table = renderVerdictTable(verdictDocument(verdict, { metrics, input: "m.json" }), false);
 * assert.match(table, /^quarantine_count +<= 0 +1 +FAIL$/m);
 * assert.match(table, /verdict: FAIL$/);
 * ```
 */
export function renderVerdictTable(
  document: VerdictDocument,
  color: boolean,
): string {
  const paint = (text: string, code: number) => color ? `\x1b[${code}m${text}\x1b[0m` : text;
  const rows = document.checks.map((check) => [
    check.name,
    check.name === RUN_STATUS_CHECK
      ? formatValue(check.name, 1)
      : `${check.comparator} ${formatValue(check.name, check.threshold)}`,
    check.name === RUN_STATUS_CHECK
      ? check.source ?? ""
      : formatValue(check.name, check.actual) + (check.source ? ` (${check.source})` : ""),
    check.pass ? "pass" : "FAIL",
  ]);
  const header = ["check", "threshold", "actual", "result"];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i]!.length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, i) => i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ");
  const body = rows.map((row) => {
    const result = row[3] === "pass" ? paint(row[3], 32) : paint(row[3]!, 31);
    return line([...row.slice(0, 3), result]);
  });
  const verdict = document.pass ? paint("PASS", 32) : paint("FAIL", 31);
  const failure = document.verification?.failure;
  const why = failure
    ? [`log: ${failure.reason} at ${failure.file}:${failure.line}: ${failure.detail}`]
    : [];
  const run = document.checks.find((check) => check.name === RUN_STATUS_CHECK && !check.pass);
  if (run !== undefined) {
    why.unshift(
      `run: the run that wrote ${document.input} ended ${run.source}, so its metrics cover ` +
        "only part of the work",
    );
  }
  if (document.checks.some((check) => check.name === LOG_MAC_CHECK && !check.pass)) {
    why.push(
      "log: it carries MACs but no key was given (--hmac-key-file or FORENSIC_HMAC_SECRET), so " +
        "only its hash chain was checked; --chain-only accepts that",
    );
  }
  return [line(header), ...body, ...why, `verdict: ${verdict}`].join("\n");
}
