/**
 * Metrics (DESIGN.md §6): the collector the tracer feeds, the JSON document and its
 * Prometheus text form.
 *
 * @module
 */
export {
  DURATION_BUCKETS_SECONDS,
  MetricsCollector,
  type MetricsCollectorOptions,
  type ScrubObservation,
} from "./collector.ts";
export { percentile } from "./percentile.ts";
export { toPrometheusText } from "./prometheus.ts";
export {
  type DurationHistogram,
  type MetricsSnapshot,
  RUN_STATUSES,
  type RunStatus,
} from "./types.ts";
