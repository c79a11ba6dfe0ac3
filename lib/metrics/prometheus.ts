/**
 * Prometheus text exposition (format 0.0.4) of a {@linkcode MetricsSnapshot}, DESIGN.md §6:
 * `kvh_` prefix, base units, `_total` counters, ratios 0–1. Clean under
 * `promtool check metrics` (tests/metrics/prometheus_test.ts runs it).
 *
 * @module
 */
import { type MetricsSnapshot, RUN_STATUSES } from "./types.ts";

type Sample = [labels: string, value: number];

function number(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function family(name: string, type: string, help: string, samples: Sample[]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const [labels, value] of samples) lines.push(`${name}${labels} ${number(value)}`);
  return lines.join("\n");
}

// 99.9 / 100 is 0.9990000000000001 in binary floating point; 15 significant digits print the
// ratio the operator configured.
function percentToRatio(pct: number): number {
  return Number((pct / 100).toPrecision(15));
}

function single(name: string, type: string, help: string, value: number): string {
  return family(name, type, help, [["", value]]);
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
  const histogramSamples = (): string => {
    const name = "kvh_sanitize_duration_seconds";
    const lines = [
      `# HELP ${name} Wall time of one scrub: zeroing, device sync and verification.`,
      `# TYPE ${name} histogram`,
    ];
    for (const [le, count] of histogram.buckets) {
      lines.push(`${name}_bucket{le="${number(le)}"} ${count}`);
    }
    lines.push(`${name}_bucket{le="+Inf"} ${histogram.count}`);
    lines.push(`${name}_sum ${number(histogram.sum)}`);
    lines.push(`${name}_count ${histogram.count}`);
    return lines.join("\n");
  };
  const blocks = [
    // A state set: one sample per status, 1 on the current one, so a rule can alert on
    // `kvh_run_status{status="interrupted"} == 1` and a missing status never reads as 0.
    family(
      "kvh_run_status",
      "gauge",
      "How the run that wrote these metrics ended: 1 on its status, 0 on the others.",
      RUN_STATUSES.map((status) => [
        `{status="${status}"}`,
        status === snapshot.run_status ? 1 : 0,
      ]),
    ),
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
    family(
      "kvh_quarantines_total",
      "counter",
      "Buffers quarantined, by reason.",
      Object.entries(snapshot.quarantines_by_reason).map((
        [reason, n],
      ) => [`{reason="${reason}"}`, n]),
    ),
    family(
      "kvh_policy_violations_total",
      "counter",
      "Policy violations, by policy.",
      Object.entries(snapshot.policy_violations_by_policy).map((
        [policy, n],
      ) => [`{policy="${policy}"}`, n]),
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
    histogramSamples(),
  ];
  return blocks.join("\n") + "\n";
}
