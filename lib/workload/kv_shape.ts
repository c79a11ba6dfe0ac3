/**
 * The size of a request's KV cache: 2 (K and V) × layers × kv_heads × tokens × head_dim
 * elements (DESIGN.md §3).
 *
 * @module
 */
import { DTYPE_BYTES } from "../tracer/types.ts";
import type { WorkloadRequest } from "./types.ts";

/**
 * The tensor shape of a request's KV cache, `[2, layers, kv_heads, tokens, head_dim]`.
 *
 * @param request The request.
 * @returns The shape the tracer allocates.
 *
 * @example Usage
 * ```ts
 * import { kvShape } from "./kv_shape.ts";
 * import assert from "node:assert/strict";
 *
 * const shape = kvShape({ layers: 32, kv_heads: 8, tokens: 16, head_dim: 128 });
 * assert.deepEqual(shape, [2, 32, 8, 16, 128]);
 * ```
 */
export function kvShape(
  request: Pick<WorkloadRequest, "layers" | "kv_heads" | "tokens" | "head_dim">,
): number[] {
  return [2, request.layers, request.kv_heads, request.tokens, request.head_dim];
}

/**
 * The size in bytes of a request's KV cache.
 *
 * @param request The request.
 * @returns Bytes: the product of {@linkcode kvShape} and the dtype's size.
 *
 * @example Usage
 * ```ts
 * import { kvBytes } from "./kv_shape.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = kvBytes({ layers: 32, kv_heads: 8, tokens: 16, head_dim: 128, dtype: "float16" });
 * assert.equal(bytes, 2 * 32 * 8 * 16 * 128 * 2);
 * ```
 */
export function kvBytes(
  request: Pick<WorkloadRequest, "layers" | "kv_heads" | "tokens" | "head_dim" | "dtype">,
): number {
  const size = DTYPE_BYTES[request.dtype];
  if (size === undefined) throw new RangeError(`Invalid dtype: ${request.dtype}`);
  return kvShape(request).reduce((a, b) => a * b, size);
}
