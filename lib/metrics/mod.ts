/**
 * Metrics (DESIGN.md §6): the collector the tracer feeds, the JSON document and its
 * Prometheus text form, written atomically.
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
export { writeFileAtomic, type WriteFileAtomicOptions } from "./write_file_atomic.ts";
export {
  type DurationHistogram,
  type MetricsSnapshot,
  RUN_STATUSES,
  type RunStatus,
} from "./types.ts";
