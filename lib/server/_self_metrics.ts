/**
 * The exporter's own counters in the text exposition format, appended after the source's
 * lines, written by the one Prometheus text writer (lib/metrics/prometheus.ts).
 *
 * @module
 */
import { type PrometheusFamily, writePrometheusText } from "../metrics/prometheus.ts";
import type { MetricsSourceStats } from "./types.ts";

/** Requests the app answered, by outcome. */
export interface ExporterCounts {
  ok: number;
  unavailable: number;
  unauthorized: number;
  bodyTooLarge: number;
  headersTooLarge: number;
}

/**
 * The exporter's samples as exposition text, every line `\n`-terminated.
 *
 * @param counts Requests answered by the app.
 * @param stats What the source reports about itself; absent fields are left out.
 * @returns The text to append after the source's own lines.
 */
export function renderSelfMetrics(counts: ExporterCounts, stats: MetricsSourceStats): string {
  const families: PrometheusFamily[] = [
    {
      name: "kvh_exporter_scrapes_total",
      type: "counter",
      help: "Scrapes of /metrics answered, by HTTP status code.",
      samples: [
        { labels: { code: "200" }, value: counts.ok },
        { labels: { code: "503" }, value: counts.unavailable },
      ],
    },
    {
      name: "kvh_exporter_rejected_requests_total",
      type: "counter",
      help:
        "Requests refused for their size or a missing, malformed or wrong bearer token, by status.",
      samples: [
        { labels: { code: "401" }, value: counts.unauthorized },
        { labels: { code: "413" }, value: counts.bodyTooLarge },
        { labels: { code: "431" }, value: counts.headersTooLarge },
      ],
    },
  ];
  if (stats.reloads !== undefined) {
    families.push({
      name: "kvh_exporter_reloads_total",
      type: "counter",
      help: "Successful loads of the source.",
      samples: [{ value: stats.reloads }],
    });
  }
  if (stats.reloadFailures !== undefined) {
    families.push({
      name: "kvh_exporter_reload_failures_total",
      type: "counter",
      help:
        "Failed loads of the source (missing, unreadable, too large, or a live source that threw).",
      samples: [{ value: stats.reloadFailures }],
    });
  }
  if (stats.mtimeMs !== undefined) {
    families.push({
      name: "kvh_exporter_source_mtime_seconds",
      type: "gauge",
      help: "Modification time of the served file, in seconds since the epoch.",
      samples: [{ value: stats.mtimeMs / 1000 }],
    });
  }
  return writePrometheusText(families);
}
