/**
 * The gate (DESIGN.md §3, `gate`): thresholds over hygiene metrics, policy files, the verdict
 * document and the evidence bundle.
 *
 * @module
 */
export { ACCEPTED_RUN_STATUSES, evaluateGate, RUN_STATUS_CHECK } from "./evaluate_gate.ts";
export { GATE_FLAGS, type GateFlagSpec, parseGateArgs, type RawFlags } from "./flags.ts";
export {
  fileInput,
  fleetInput,
  type GateInput,
  type LoadedGateMetrics,
  runGate,
  type RunGateOptions,
} from "./run_gate.ts";
export {
  parseThresholdText,
  resolveThresholds,
  THRESHOLDS,
  type ThresholdSources,
  type ThresholdSpec,
  thresholdsRecord,
  thresholdValueProblem,
} from "./thresholds.ts";
export { renderVerdictTable } from "./verdict_table.ts";
export {
  type GateMetricsInput,
  METRICS_MAX_BYTES,
  parseGateMetrics,
  readGateMetrics,
} from "./read_metrics.ts";
export {
  type GatePolicy,
  gatePolicyThresholds,
  parseGatePolicy,
  readGatePolicy,
} from "./policy.ts";
export {
  addLogCheck,
  type AddLogCheckOptions,
  LOG_CHECK,
  LOG_MAC_CHECK,
  type LogCheckReport,
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
  type StagedEvidenceBundle,
  stageEvidenceBundle,
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
