/**
 * The record every forensic-log benchmark appends and the MAC key it uses, so figures of
 * different benchmark files describe records of the same size and shape.
 *
 * @module
 */

/** HMAC key of the keyed benchmark cases. */
export const BENCH_KEY: Uint8Array = new TextEncoder().encode("bench-key");

/** Fields of one benchmark record: a tracer `allocate` of a 256 KiB buffer. */
export const BENCH_FIELDS = {
  tenant_id: "tenant-3",
  request_id: "req-1",
  model_id: "llama-3-8b",
  handle: "b-1",
  nbytes: 262144,
} as const;
