/**
 * The synthetic multi-tenant workload `kvh trace` runs without `--workload`: several tenants,
 * models and request sizes with real models' KV geometry, reproducible from a seed.
 *
 * @module
 */
import type { WorkloadRequest } from "./types.ts";

/** A model's KV-cache geometry. */
export interface ModelGeometry {
  /** Model identifier. */
  model_id: string;
  /** Transformer layers. */
  layers: number;
  /** Key/value heads per layer (grouped-query attention). */
  kv_heads: number;
  /** Dimension of one head. */
  head_dim: number;
  /** Element type of the cache. */
  dtype: string;
}

/** Models of the synthetic workload: published configurations of open models. */
export const SYNTHETIC_MODELS: readonly ModelGeometry[] = [
  { model_id: "qwen2.5-0.5b", layers: 24, kv_heads: 2, head_dim: 64, dtype: "bfloat16" },
  { model_id: "llama-3.2-1b", layers: 16, kv_heads: 8, head_dim: 64, dtype: "bfloat16" },
  { model_id: "mistral-7b", layers: 32, kv_heads: 8, head_dim: 128, dtype: "float16" },
  { model_id: "llama-3-8b", layers: 32, kv_heads: 8, head_dim: 128, dtype: "float16" },
];

/** Tokens are allocated in blocks of this many (paged KV caches), so sizes repeat and pool. */
export const TOKEN_BLOCK = 16;

/** Options of {@linkcode syntheticWorkload}. */
export interface SyntheticWorkloadOptions {
  /**
   * Number of tenants.
   *
   * @default {4}
   */
  tenants?: number;
  /**
   * Number of requests.
   *
   * @default {400}
   */
  requests?: number;
  /**
   * Most tokens one request holds; requests hold 1 to `tokens / 16` blocks of 16.
   *
   * @default {32}
   */
  tokens?: number;
  /**
   * Seed: the same seed gives the same requests.
   *
   * @default {1}
   */
  seed?: number;
}

// Mulberry32: tiny, fast and good enough to pick tenants and sizes reproducibly.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Generates the synthetic requests.
 *
 * @param options Tenants, requests, tokens and seed.
 * @returns The requests, in order.
 *
 * @example Usage
 * ```ts
 * import { syntheticWorkload } from "./synthetic_workload.ts";
 * import assert from "node:assert/strict";
 *
 * const requests = [...syntheticWorkload({ tenants: 2, requests: 10, seed: 7 })];
 * assert.equal(requests.length, 10);
 * assert.deepEqual(requests, [...syntheticWorkload({ tenants: 2, requests: 10, seed: 7 })]);
 * ```
 */
export function* syntheticWorkload(
  options: SyntheticWorkloadOptions = {},
): Generator<WorkloadRequest> {
  const { tenants = 4, requests = 400, tokens = 32, seed = 1 } = options;
  for (const [name, value] of [["tenants", tenants], ["requests", requests], ["tokens", tokens]]) {
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new RangeError(`Invalid ${name}: expected a positive integer, got ${value}`);
    }
  }
  const random = mulberry32(seed);
  const blocks = Math.max(1, Math.floor(tokens / TOKEN_BLOCK));
  for (let i = 0; i < requests; i++) {
    const tenant = Math.floor(random() * tenants);
    const model = SYNTHETIC_MODELS[(tenant + Math.floor(random() * 2)) % SYNTHETIC_MODELS.length]!;
    const used = tokens < TOKEN_BLOCK ? tokens : (1 + Math.floor(random() * blocks)) * TOKEN_BLOCK;
    yield {
      tenant_id: `tenant-${String(tenant + 1).padStart(2, "0")}`,
      request_id: `req-${String(i + 1).padStart(6, "0")}`,
      model_id: model.model_id,
      tokens: used,
      layers: model.layers,
      kv_heads: model.kv_heads,
      head_dim: model.head_dim,
      dtype: model.dtype,
    };
  }
}
