/**
 * The cache tracer (DESIGN.md §5): buffer lifecycle, policies, typed errors.
 *
 * @module
 */
export { CacheTracer } from "./cache_tracer.ts";
export {
  AuditEmitError,
  CoverageBelowThresholdError,
  InvalidIdentifierError,
  InvalidStateError,
  PolicyViolationError,
  UnknownHandleError,
} from "./errors.ts";
export { MAX_IDENTIFIER_LENGTH, validateIdentifier } from "./identifiers.ts";
export {
  type AllocateRequest,
  type BufferInfo,
  type BufferOwner,
  type BufferState,
  type CacheTracerOptions,
  DTYPE_BYTES,
  POLICY_NAMES,
  type PolicyName,
  QUARANTINE_REASONS,
  type QuarantineReason,
  type SanitizeOptions,
  type SanitizeResult,
  type TracerStats,
} from "./types.ts";
