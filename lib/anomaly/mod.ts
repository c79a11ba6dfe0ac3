/**
 * Anomaly detection over streams of values (activations, scrub durations).
 *
 * @module
 */
export {
  type ActivationStats,
  AnomalyMonitor,
  type AnomalyMonitorOptions,
  type AnomalyVerdict,
} from "./anomaly_monitor.ts";
