/**
 * The fleet gate's input (DESIGN.md §7): every node's kvh metrics, aggregated by PromQL through
 * Prometheus's HTTP API (`GET /api/v1/query`), reduced to the worst value across nodes and the
 * node that reported it. Anything that would make the answer incomplete — Prometheus
 * unreachable, a query rejected, no series, a scrape target down, a node missing a metric — is
 * an error (exit 1), never a pass.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import type { GateMetricName, GateMetrics } from "./types.ts";

/** Options of {@linkcode queryFleetMetrics}. */
export interface QueryFleetMetricsOptions {
  /**
   * Series selector added to every query, e.g. `{job="kvh",env="prod"}`; `""` selects every
   * series of each metric.
   *
   * @default {'{job="kvh"}'}
   */
  selector?: string;
  /**
   * Time limit of each HTTP request to Prometheus, in milliseconds.
   *
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * The fetch implementation (tests pass a fake).
   *
   * @default {globalThis.fetch}
   */
  fetch?: typeof fetch;
}

/** How a metric is read from the fleet: its PromQL series, the per-node and fleet reduction. */
interface FleetQuery {
  metric: GateMetricName;
  series: string;
  /** Aggregation per node and across nodes. */
  reduce: "min" | "max" | "sum";
  /** Factor from the Prometheus base unit to the gate's unit (ratio → %, s → ms). */
  scale: number;
  /** A missing series is an error for these; the optional ones are left to the thresholds. */
  required: boolean;
}

const QUERIES: readonly FleetQuery[] = [
  {
    metric: "min_coverage_pct",
    series: "kvh_coverage_min_ratio",
    reduce: "min",
    scale: 100,
    required: true,
  },
  {
    metric: "unsanitized_regions_count",
    series: "kvh_unsanitized_buffers",
    reduce: "sum",
    scale: 1,
    required: true,
  },
  {
    metric: "quarantine_count",
    series: "kvh_quarantined_buffers",
    reduce: "sum",
    scale: 1,
    required: true,
  },
  {
    metric: "sanitize_duration_p95_ms",
    series: "kvh_sanitize_duration_p95_seconds",
    reduce: "max",
    scale: 1000,
    required: false,
  },
  { metric: "reuse_rate", series: "kvh_reuse_rate", reduce: "max", scale: 1, required: false },
];

interface Sample {
  node: string;
  value: number;
}

/**
 * Reads the gate's metrics from every node Prometheus scrapes: worst coverage
 * (`min by (instance) (kvh_coverage_min_ratio)` × 100), total unsanitized and quarantined
 * buffers (`sum`), worst p95 scrub time (`max`, × 1000) and worst reuse rate (`max`), with the
 * node behind each value in `sources`.
 *
 * @param url Base URL of Prometheus (or of Thanos/Mimir's Prometheus-compatible API).
 * @param options Selector, timeout and fetch implementation.
 * @returns Metrics for `evaluateGate`, with `sources` naming the worst node of each.
 * @throws {KvhError} (exit 1) If Prometheus cannot be reached or rejects a query, if a required
 * metric has no series, or if a selected scrape target is down or lacks a metric.
 *
 * @example Against a fake Prometheus
 * ```ts
 * import { queryFleetMetrics } from "./prometheus_source.ts";
 * import assert from "node:assert/strict";
 *
 * const fake: typeof fetch = (input) => {
 *   const query = new URL(String(input)).searchParams.get("query")!;
 *   const value = query.includes("coverage") ? "0.5" : query.startsWith("up") ? "1" : "0";
 *   const result = query.includes("p95") || query.includes("reuse")
 *     ? []
 *     : [{ metric: { instance: "node-a:9101" }, value: [0, value] }];
 *   const data = { resultType: "vector", result };
 *   return Promise.resolve(Response.json({ status: "success", data }));
 * };
 * const metrics = await queryFleetMetrics("http://prometheus:9090", { fetch: fake });
 * assert.equal(metrics.min_coverage_pct, 50);
 * assert.equal(metrics.sources?.min_coverage_pct, "node-a:9101");
 * ```
 */
export async function queryFleetMetrics(
  url: string,
  options: QueryFleetMetricsOptions = {},
): Promise<GateMetrics> {
  const { selector = '{job="kvh"}', timeoutMs = 10_000, fetch: fetchImpl = fetch } = options;
  if (selector !== "" && !/^\{[^\n]*\}$/.test(selector)) {
    throw new KvhError(
      "selector_invalid",
      `Invalid --selector: expected a PromQL label selector like {job="kvh"}, got ${selector}`,
    );
  }
  const endpoint = queryEndpoint(url);
  const run = (promql: string) => instantQuery(endpoint, promql, timeoutMs, fetchImpl);

  const up = await run(`up${selector}`);
  const down = up.filter((s) => s.value !== 1).map((s) => s.node);
  if (down.length > 0) {
    throw new KvhError(
      "prometheus_targets_down",
      `Cannot gate the fleet: ${down.length} of ${up.length} targets ${selector} are down in ` +
        `Prometheus (${down.sort().join(", ")}), so their metrics are unknown`,
    );
  }
  const nodes = up.map((s) => s.node);
  const results = await Promise.all(
    QUERIES.map((q) => run(`${q.reduce} by (instance) (${q.series}${selector})`)),
  );
  const metrics: GateMetrics = {};
  const sources: Partial<Record<GateMetricName, string>> = {};
  QUERIES.forEach((q, i) => {
    const samples = results[i]!;
    if (samples.length === 0) {
      if (!q.required) return;
      throw new KvhError(
        "prometheus_no_series",
        `No series for ${q.series}${selector} in Prometheus at ${url}: check --selector and that ` +
          "the kvh exporters are scraped",
      );
    }
    const missing = nodes.filter((node) => !samples.some((s) => s.node === node));
    if (missing.length > 0) {
      throw new KvhError(
        "prometheus_series_missing",
        `Cannot gate the fleet: no ${q.series} from ${missing.sort().join(", ")} in Prometheus`,
      );
    }
    const [value, source] = reduce(q.reduce, samples);
    metrics[q.metric] = Number((value * q.scale).toPrecision(12));
    sources[q.metric] = source;
  });
  metrics.sources = sources;
  return metrics;
}

/** The fleet value and the node behind it: the worst node, or the largest share of a sum. */
function reduce(how: FleetQuery["reduce"], samples: Sample[]): [number, string] {
  const sorted = [...samples].sort((a, b) =>
    (how === "min" ? a.value - b.value : b.value - a.value) || a.node.localeCompare(b.node)
  );
  const worst = sorted[0]!;
  if (how !== "sum") return [worst.value, worst.node];
  const total = samples.reduce((sum, s) => sum + s.value, 0);
  const contributors = sorted.filter((s) => s.value > 0);
  if (contributors.length === 0) return [total, `${samples.length} nodes`];
  const more = contributors.length - 1;
  return [total, more === 0 ? worst.node : `${worst.node} and ${more} more`];
}

function queryEndpoint(url: string): URL {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new KvhError("flag_invalid", `Invalid --prometheus: expected an http(s) URL, got ${url}`);
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new KvhError("flag_invalid", `Invalid --prometheus: expected an http(s) URL, got ${url}`);
  }
  base.pathname = `${base.pathname.replace(/\/+$/, "")}/api/v1/query`;
  base.search = "";
  return base;
}

async function instantQuery(
  endpoint: URL,
  promql: string,
  timeoutMs: number,
  fetchImpl: typeof fetch,
): Promise<Sample[]> {
  const target = new URL(endpoint);
  target.searchParams.set("query", promql);
  const where = `${endpoint.origin}${endpoint.pathname.replace(/\/api\/v1\/query$/, "")}`;
  let res: Response;
  let body: unknown;
  try {
    res = await fetchImpl(target, { signal: AbortSignal.timeout(timeoutMs) });
    body = await res.json().catch(() => undefined);
  } catch (error) {
    const reason = error instanceof DOMException && error.name === "TimeoutError"
      ? `no answer within ${timeoutMs} ms`
      : error instanceof Error
      ? error.message.split("\n")[0]
      : String(error);
    throw new KvhError("prometheus_unreachable", `Cannot reach Prometheus at ${where}: ${reason}`, {
      cause: error,
    });
  }
  const answer = body as {
    status?: string;
    error?: string;
    data?: { resultType?: string; result?: unknown };
  } | undefined;
  if (answer?.status !== "success") {
    const detail = typeof answer?.error === "string"
      ? answer.error
      : `HTTP ${res.status} without a Prometheus answer`;
    throw new KvhError(
      "prometheus_error",
      `Prometheus at ${where} rejected query ${promql}: ${detail}`,
    );
  }
  if (answer.data?.resultType !== "vector" || !Array.isArray(answer.data.result)) {
    throw new KvhError(
      "prometheus_error",
      `Prometheus at ${where} answered query ${promql} with ${
        answer.data?.resultType ?? "no data"
      }, expected a vector`,
    );
  }
  return answer.data.result.map((item: { metric?: Record<string, string>; value?: unknown[] }) => {
    const labels = item.metric ?? {};
    const node = labels.instance ?? JSON.stringify(labels);
    return { node, value: Number(item.value?.[1]) };
  });
}
