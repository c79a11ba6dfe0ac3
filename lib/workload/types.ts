/**
 * A serving request as `kvh trace` replays it (DESIGN.md §3, `--workload`).
 *
 * @module
 */

/** One request of a workload: whose KV cache, of which model, how large. */
export interface WorkloadRequest {
  /** Tenant identifier. */
  tenant_id: string;
  /** Request identifier. */
  request_id: string;
  /** Model identifier. */
  model_id: string;
  /** Tokens held in the KV cache. */
  tokens: number;
  /** Transformer layers. */
  layers: number;
  /** Key/value heads per layer. */
  kv_heads: number;
  /** Dimension of one head. */
  head_dim: number;
  /** Element type, a key of `DTYPE_BYTES`. */
  dtype: string;
}
