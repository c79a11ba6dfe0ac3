/**
 * Workloads of `kvh trace`: the JSONL request format, the synthetic multi-tenant workload and
 * the runner that drives the tracer like a serving engine.
 *
 * @module
 */
export { kvBytes, kvShape } from "./kv_shape.ts";
export {
  MAX_REQUEST_BYTES,
  MAX_WORKLOAD_LINE_BYTES,
  parseWorkload,
  parseWorkloadLine,
  WorkloadError,
  type WorkloadReader,
} from "./parse_workload.ts";
export {
  runWorkload,
  type RunWorkloadOptions,
  tenantPattern,
  type WorkloadSummary,
} from "./run_workload.ts";
export {
  type ModelGeometry,
  SYNTHETIC_MODELS,
  syntheticWorkload,
  type SyntheticWorkloadOptions,
  TOKEN_BLOCK,
} from "./synthetic_workload.ts";
export type { WorkloadRequest } from "./types.ts";
