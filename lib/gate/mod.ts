/**
 * The gate (DESIGN.md §3, `gate`): thresholds over hygiene metrics, policy files, the verdict
 * document and the evidence bundle.
 *
 * @module
 */
export { evaluateGate } from "./evaluate_gate.ts";
export { type GateMetricsInput, parseGateMetrics, readGateMetrics } from "./read_metrics.ts";
export {
  type GatePolicy,
  gatePolicyThresholds,
  parseGatePolicy,
  readGatePolicy,
} from "./policy.ts";
export {
  addLogCheck,
  LOG_CHECK,
  type VerdictDocument,
  verdictDocument,
  type VerdictDocumentOptions,
} from "./verdict_document.ts";
export { queryFleetMetrics, type QueryFleetMetricsOptions } from "./prometheus_source.ts";
export {
  type EvidenceBundle,
  type EvidenceEntry,
  type EvidenceFile,
  MANIFEST_NAME,
  writeEvidenceBundle,
} from "./evidence.ts";
export type {
  GateCheck,
  GateFailure,
  GateMetricName,
  GateMetrics,
  GateThresholds,
  GateThresholdsRecord,
  GateVerdict,
} from "./types.ts";
