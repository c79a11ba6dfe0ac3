/**
 * kvh — KV-cache hygiene for multi-tenant LLM serving.
 *
 * The public library API: the forensic log (write and verify), the tracer and its sanitizers,
 * metrics, the gate, retention, the metrics server and the transparency-log proofs. Everything here is a named re-export of
 * an area's `lib/<area>/mod.ts`.
 *
 * @module
 */
export { EXIT_POLICY, EXIT_USAGE, KvhError, type KvhErrorOptions } from "./lib/errors.ts";
export {
  type AppendOptions,
  type AuditSink,
  type ChainFile,
  type ChainHead,
  DEFAULT_LOG_FILE,
  ForensicLog,
  type ForensicLogOptions,
  GENESIS_V2,
  listChainFiles,
  logLockPath,
  openForensicLog,
  type RecordV2,
  type VerifyFailure,
  verifyLog,
  type VerifyLogOptions,
  type VerifyLogReport,
  type VerifyReason,
  type VerifyReport,
} from "./lib/forensic/mod.ts";
export {
  type AllocateRequest,
  AuditEmitError,
  type BufferInfo,
  type BufferOwner,
  type BufferState,
  CacheTracer,
  type CacheTracerOptions,
  CoverageBelowThresholdError,
  DTYPE_BYTES,
  InvalidIdentifierError,
  InvalidStateError,
  type PolicyName,
  PolicyViolationError,
  type QuarantineReason,
  type SanitizeOptions,
  type SanitizeResult,
  type TracerStats,
  UnknownHandleError,
  validateIdentifier,
} from "./lib/tracer/mod.ts";
export {
  type CpuKernels,
  CpuSanitizer,
  type CpuSanitizerOptions,
  type DeviceBuffer,
  type DeviceKind,
  samplePositions,
  type Sanitizer,
  TS_CPU_KERNELS,
  type VerifyMode,
  type VerifyOptions,
  type VerifyResult,
  type ZeroOptions,
} from "./lib/sanitize/mod.ts";
export { loadNativeCpuKernels, type NativeCpuKernelsOptions } from "./lib/sanitize/mod.ts";
export {
  DEVICE_CHOICES,
  type DeviceChoice,
  type OpenedSanitizer,
  openSanitizer,
  type OpenSanitizerOptions,
} from "./lib/sanitize/mod.ts";
export {
  type DurationHistogram,
  MetricsCollector,
  type MetricsCollectorOptions,
  type MetricsSnapshot,
  percentile,
  RUN_STATUSES,
  type RunStatus,
  type ScrubObservation,
  toPrometheusText,
} from "./lib/metrics/mod.ts";
export { writeFileAtomic, type WriteFileOptions } from "./lib/io/mod.ts";
export {
  type ActivationStats,
  AnomalyMonitor,
  type AnomalyMonitorOptions,
  type AnomalyVerdict,
} from "./lib/anomaly/mod.ts";
export {
  bearerAuth,
  type BearerAuthOptions,
  createApp,
  type CreateAppOptions,
  type ExpositionSnapshot,
  FileMetricsSource,
  type FileMetricsSourceOptions,
  type MetricsSource,
  type MetricsSourceStats,
  PROMETHEUS_CONTENT_TYPE,
} from "./lib/server/mod.ts";
export {
  addLogCheck,
  evaluateGate,
  type EvidenceBundle,
  type EvidenceEntry,
  type EvidenceFile,
  type GateCheck,
  type GateFailure,
  type GateMetricName,
  type GateMetrics,
  type GateMetricsInput,
  type GatePolicy,
  gatePolicyThresholds,
  type GateThresholds,
  type GateThresholdsRecord,
  type GateVerdict,
  LOG_CHECK,
  MANIFEST_NAME,
  parseGateMetrics,
  parseGatePolicy,
  queryFleetMetrics,
  type QueryFleetMetricsOptions,
  readGateMetrics,
  readGatePolicy,
  type VerdictDocument,
  verdictDocument,
  type VerdictDocumentOptions,
  writeEvidenceBundle,
} from "./lib/gate/mod.ts";
export {
  planPrune,
  type PruneCandidate,
  pruneLog,
  type PruneLogOptions,
  type PrunePlan,
  type PrunePolicy,
  type PruneReport,
  type PruneRule,
  type PruneStep,
  type PruneVerification,
  rotatedAt,
} from "./lib/retention/mod.ts";
export {
  CompactRange,
  consistencyProof,
  EMPTY_ROOT,
  hashChildren,
  hashLeaf,
  inclusionProof,
  LEAF_PREFIX,
  MemoryTree,
  NODE_PREFIX,
  type SubtreeSource,
  verifyConsistency,
  verifyInclusion,
} from "./lib/transparency/mod.ts";
