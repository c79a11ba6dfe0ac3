/**
 * The exporter's own counters, written after the source's bytes in one allocation. The HELP
 * and TYPE lines are encoded once at load; per scrape only the numbers are written, because
 * this runs on every request of the hot path.
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

const encoder = new TextEncoder();

function family(name: string, type: "counter" | "gauge", help: string, labels = ""): Uint8Array {
  return encoder.encode(`# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name}${labels} `);
}
function sample(name: string, labels: string): Uint8Array {
  return encoder.encode(`${name}${labels} `);
}

const SCRAPES_200 = family(
  "kvh_exporter_scrapes_total",
  "counter",
  "Scrapes of /metrics answered, by HTTP status code.",
  '{code="200"}',
);
const SCRAPES_503 = sample("kvh_exporter_scrapes_total", '{code="503"}');
const REJECTED_401 = family(
  "kvh_exporter_rejected_requests_total",
  "counter",
  "Requests refused for their size or a missing, malformed or wrong bearer token, by status.",
  '{code="401"}',
);
const REJECTED_413 = sample("kvh_exporter_rejected_requests_total", '{code="413"}');
const REJECTED_431 = sample("kvh_exporter_rejected_requests_total", '{code="431"}');
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
 * `body`, a newline if it lacks a final one, then the exporter's samples.
 *
 * @returns The whole exposition; what was appended starts at `body.length`.
 */
export function appendSelfMetrics(
  body: Uint8Array,
  needsNewline: boolean,
  counts: ExporterCounts,
  stats: MetricsSourceStats,
): Uint8Array<ArrayBuffer> {
  const parts: [Uint8Array, string][] = [
    [SCRAPES_200, String(counts.ok)],
    [SCRAPES_503, String(counts.unavailable)],
    [REJECTED_401, String(counts.unauthorized)],
    [REJECTED_413, String(counts.bodyTooLarge)],
    [REJECTED_431, String(counts.headersTooLarge)],
  ];
  if (stats.reloads !== undefined) parts.push([RELOADS, String(stats.reloads)]);
  if (stats.reloadFailures !== undefined) {
    parts.push([RELOAD_FAILURES, String(stats.reloadFailures)]);
  }
  if (stats.mtimeMs !== undefined) parts.push([MTIME, String(stats.mtimeMs / 1000)]);
  const tailStart = body.length + (needsNewline ? 1 : 0);
  let length = tailStart;
  for (const [prefix, value] of parts) length += prefix.length + value.length + 1;
  const out = new Uint8Array(length);
  out.set(body, 0);
  if (needsNewline) out[body.length] = 0x0a;
  let at = tailStart;
  for (const [prefix, value] of parts) {
    out.set(prefix, at);
    at += prefix.length;
    // Numbers are ASCII, so their UTF-16 code units are their bytes.
    for (let i = 0; i < value.length; i++) out[at++] = value.charCodeAt(i);
    out[at++] = 0x0a;
  }
  return out;
}
