/**
 * The bounds of a workload request, shared by the hand-written check (parse_workload.ts) and
 * the schema that words its errors (_request_schema.ts), so the two cannot drift apart.
 *
 * @module
 */

/** Largest KV cache one request may ask for (16 GiB): a typo must not exhaust memory. */
export const MAX_REQUEST_BYTES = 16 * 1024 ** 3;

/** Upper bounds of the request's numbers. */
export const REQUEST_LIMITS = Object.freeze({
  /** `tokens`: 0 up to this. */
  maxTokens: 10_000_000,
  /** `layers`, `kv_heads`, `head_dim`: 1 up to this. */
  maxCount: 1_000_000,
});
