/**
 * The exporter's own counters in the text exposition format, appended after the source's
 * lines. HELP and TYPE lines are built once at load; per rendering only the numbers change.
 *
 * @module
 */
import type { MetricsSourceStats } from "./types.ts";

/** Requests the app answered, by outcome. */
export interface ExporterCounts {
  ok: number;
  unavailable: number;
  unauthorized: number;
  bodyTooLarge: number;
  headersTooLarge: number;
}

function family(name: string, type: "counter" | "gauge", help: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
}

const SCRAPES = family(
  "kvh_exporter_scrapes_total",
  "counter",
  "Scrapes of /metrics answered, by HTTP status code.",
);
const REJECTED = family(
  "kvh_exporter_rejected_requests_total",
  "counter",
  "Requests refused for their size or a missing, malformed or wrong bearer token, by status.",
);
const RELOADS = family("kvh_exporter_reloads_total", "counter", "Successful loads of the source.");
const RELOAD_FAILURES = family(
  "kvh_exporter_reload_failures_total",
  "counter",
  "Failed loads of the source (missing, unreadable, too large, or a live source that threw).",
);
const MTIME = family(
  "kvh_exporter_source_mtime_seconds",
  "gauge",
  "Modification time of the served file, in seconds since the epoch.",
);

/**
 * The exporter's samples as exposition text, every line `\n`-terminated.
 *
 * @param counts Requests answered by the app.
 * @param stats What the source reports about itself; absent fields are left out.
 * @returns The text to append after the source's own lines.
 */
export function renderSelfMetrics(counts: ExporterCounts, stats: MetricsSourceStats): string {
  let text = `${SCRAPES}kvh_exporter_scrapes_total{code="200"} ${counts.ok}
kvh_exporter_scrapes_total{code="503"} ${counts.unavailable}
${REJECTED}kvh_exporter_rejected_requests_total{code="401"} ${counts.unauthorized}
kvh_exporter_rejected_requests_total{code="413"} ${counts.bodyTooLarge}
kvh_exporter_rejected_requests_total{code="431"} ${counts.headersTooLarge}
`;
  if (stats.reloads !== undefined) {
    text += `${RELOADS}kvh_exporter_reloads_total ${stats.reloads}\n`;
  }
  if (stats.reloadFailures !== undefined) {
    text += `${RELOAD_FAILURES}kvh_exporter_reload_failures_total ${stats.reloadFailures}\n`;
  }
  if (stats.mtimeMs !== undefined) {
    text += `${MTIME}kvh_exporter_source_mtime_seconds ${stats.mtimeMs / 1000}\n`;
  }
  return text;
}
