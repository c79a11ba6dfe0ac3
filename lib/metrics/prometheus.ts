/**
 * Prometheus text exposition (format 0.0.4) of a {@linkcode MetricsSnapshot}, DESIGN.md §6:
 * `kvh_` prefix, base units, `_total` counters, ratios 0–1. Clean under
 * `promtool check metrics` (tests/metrics/prometheus_test.ts runs it).
 *
 * @module
 */
import { type MetricsSnapshot, RUN_STATUSES } from "./types.ts";

/** One sample of a family. */
export interface PrometheusSample {
  /** Appended to the family's name, e.g. `_bucket` for a histogram. */
  suffix?: string;
  /** Label values by label name; values are escaped when written. */
  labels?: Readonly<Record<string, string>>;
  /** The value; `NaN` and infinities are written as Prometheus spells them. */
  value: number;
}

/** One metric family: its HELP and TYPE lines, then its samples. */
export interface PrometheusFamily {
  /** Metric name, e.g. `kvh_quarantines_total`. */
  name: string;
  /** Metric type. */
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  /** Help text (escaped when written). */
  help: string;
  /** The samples. */
  samples: readonly PrometheusSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Escapes a label value for the text format 0.0.4: backslash, double quote and line feed
 * become `\\`, `\"` and `\n`. Everything else, non-ASCII included, is written as it is
 * (the format is UTF-8).
 *
 * @param value The raw label value.
 * @returns The text to put between the quotes.
 *
 * @example Usage
 * ```ts
 * import { escapeLabelValue } from "./prometheus.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
 * ```
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (ch) => ch === "\n" ? "\\n" : `\\${ch}`);
}

function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (ch) => ch === "\n" ? "\\n" : "\\\\");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/**
 * Writes metric families in the Prometheus text exposition format 0.0.4: the one writer kvh
 * uses, for the metrics files and for the exporter's own metrics, so label values are escaped
 * everywhere.
 *
 * @param families The families, in output order.
 * @returns The text, every line ending with a newline.
 * @throws {TypeError} For a metric or label name the format does not allow.
 *
 * @example Usage
 * ```ts
 * import { writePrometheusText } from "./prometheus.ts";
 * import assert from "node:assert/strict";
 *
 * const text = writePrometheusText([{
 *   name: "kvh_quarantines_total",
 *   type: "counter",
 *   help: "Buffers quarantined, by reason.",
 *   samples: [{ labels: { reason: 'said "no"' }, value: 1 }],
 * }]);
 * assert.match(text, /^kvh_quarantines_total\{reason="said \\"no\\""\} 1$/m);
 * ```
 */
export function writePrometheusText(families: readonly PrometheusFamily[]): string {
  let text = "";
  for (const { name, type, help, samples } of families) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`Invalid metric name ${JSON.stringify(name)}`);
    text += `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
    for (const { suffix = "", labels, value } of samples) {
      let pairs = "";
      if (labels !== undefined) {
        for (const [label, raw] of Object.entries(labels)) {
          if (!LABEL_NAME.test(label)) {
            throw new TypeError(`Invalid label name ${JSON.stringify(label)} of ${name}`);
          }
          pairs += `${pairs === "" ? "" : ","}${label}="${escapeLabelValue(raw)}"`;
        }
      }
      text += `${name}${suffix}${pairs === "" ? "" : `{${pairs}}`} ${formatValue(value)}\n`;
    }
  }
  return text;
}

// 99.9 / 100 is 0.9990000000000001 in binary floating point; 15 significant digits print the
// ratio the operator configured.
function percentToRatio(pct: number): number {
  return Number((pct / 100).toPrecision(15));
}

function single(
  name: string,
  type: PrometheusFamily["type"],
  help: string,
  value: number,
): PrometheusFamily {
  return { name, type, help, samples: [{ value }] };
}

function labelled(
  name: string,
  help: string,
  label: string,
  counts: Record<string, number>,
): PrometheusFamily {
  const samples = Object.entries(counts).map(([key, value]) => ({
    labels: { [label]: key },
    value,
  }));
  return { name, type: "counter", help, samples };
}

/**
 * Renders the snapshot as Prometheus text. Coverage that was not read back (`--verify none`) is
 * reported as 0, so a gate on it fails closed.
 *
 * @param snapshot The metrics document.
 * @returns The exposition text, ending with a newline.
 *
 * @example Usage
 * ```ts
 * import { MetricsCollector } from "./collector.ts";
 * import { toPrometheusText } from "./prometheus.ts";
 * import assert from "node:assert/strict";
 *
 * const snapshot = new MetricsCollector({ thresholdPct: 99.9 }).snapshot({
 *   totalBuffers: 0, activeBuffers: 0, unsanitizedBuffers: 0, quarantinedBuffers: 0, freedBuffers: 0,
 * });
 * assert.match(toPrometheusText(snapshot), /^kvh_coverage_threshold_ratio 0\.999$/m);
 * ```
 */
export function toPrometheusText(snapshot: MetricsSnapshot): string {
  const verified = snapshot.coverage_verified;
  const ratio = (pct: number) => (verified ? percentToRatio(pct) : 0);
  const histogram = snapshot.sanitize_duration_seconds;
  const histogramFamily: PrometheusFamily = {
    name: "kvh_sanitize_duration_seconds",
    type: "histogram",
    help: "Wall time of one scrub: zeroing, device sync and verification.",
    samples: [
      ...histogram.buckets.map(([le, count]) => ({
        suffix: "_bucket",
        labels: { le: formatValue(le) },
        value: count,
      })),
      { suffix: "_bucket", labels: { le: "+Inf" }, value: histogram.count },
      { suffix: "_sum", value: histogram.sum },
      { suffix: "_count", value: histogram.count },
    ],
  };
  const blocks: PrometheusFamily[] = [
    // A state set: one sample per status, 1 on the current one, so a rule can alert on
    // `kvh_run_status{status="interrupted"} == 1` and a missing status never reads as 0.
    {
      name: "kvh_run_status",
      type: "gauge",
      help: "How the run that wrote these metrics ended: 1 on its status, 0 on the others.",
      samples: RUN_STATUSES.map((status) => ({
        labels: { status },
        value: status === snapshot.run_status ? 1 : 0,
      })),
    },
    single(
      "kvh_coverage_min_ratio",
      "gauge",
      "Lowest verified scrub coverage (0 when any scrub was unverified).",
      ratio(snapshot.min_coverage_pct),
    ),
    single(
      "kvh_coverage_avg_ratio",
      "gauge",
      "Mean verified scrub coverage (0 when any scrub was unverified).",
      ratio(snapshot.avg_coverage_pct),
    ),
    single(
      "kvh_coverage_threshold_ratio",
      "gauge",
      "Verified coverage a free or hand-off requires.",
      percentToRatio(snapshot.threshold_pct),
    ),
    single(
      "kvh_unsanitized_buffers",
      "gauge",
      "Buffers holding data not yet scrubbed.",
      snapshot.unsanitized_regions_count,
    ),
    single(
      "kvh_quarantined_buffers",
      "gauge",
      "Buffers quarantined (terminal).",
      snapshot.quarantine_count,
    ),
    single(
      "kvh_active_buffers",
      "gauge",
      "Buffers neither freed nor quarantined.",
      snapshot.active_buffers,
    ),
    single("kvh_reuse_rate", "gauge", "Hand-offs per allocation.", snapshot.reuse_rate),
    single(
      "kvh_sanitize_duration_p50_seconds",
      "gauge",
      "Median scrub duration.",
      snapshot.sanitize_duration_p50_ms / 1000,
    ),
    single(
      "kvh_sanitize_duration_p95_seconds",
      "gauge",
      "95th percentile scrub duration.",
      snapshot.sanitize_duration_p95_ms / 1000,
    ),
    single("kvh_allocations_total", "counter", "Buffer allocations.", snapshot.allocations),
    single(
      "kvh_frees_total",
      "counter",
      "Successful frees after a verified scrub.",
      snapshot.freed_total,
    ),
    single(
      "kvh_reuses_total",
      "counter",
      "Hand-offs of a freed buffer to a new owner.",
      snapshot.reuse_total,
    ),
    labelled(
      "kvh_quarantines_total",
      "Buffers quarantined, by reason.",
      "reason",
      snapshot.quarantines_by_reason,
    ),
    labelled(
      "kvh_policy_violations_total",
      "Policy violations, by policy.",
      "policy",
      snapshot.policy_violations_by_policy,
    ),
    single(
      "kvh_scrubbed_bytes_total",
      "counter",
      "Bytes zeroed, passes included.",
      snapshot.scrubbed_bytes_total,
    ),
    single(
      "kvh_leaks_detected_total",
      "counter",
      "Hand-offs that found another tenant's bytes in the buffer.",
      snapshot.leaks_detected_total,
    ),
    single(
      "kvh_audit_emit_failures_total",
      "counter",
      "Events the forensic log refused.",
      snapshot.audit_emit_failures_total,
    ),
    single(
      "kvh_audit_critical_emit_failures_total",
      "counter",
      "Critical events the forensic log refused.",
      snapshot.audit_critical_emit_failures_total,
    ),
    single("kvh_anomalies_total", "counter", "Scrub-duration anomalies.", snapshot.anomalies_total),
    histogramFamily,
  ];
  return writePrometheusText(blocks);
}
