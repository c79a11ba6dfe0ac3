/**
 * The workload request schema in zod, for the lines the hand-written check of
 * parse_workload.ts does not accept: it decides them and words the error, so a bad line is
 * reported exactly as before that check existed. Loaded only when such a line comes (zod costs
 * ~40 ms to load, a tenth of a 20,000-request trace).
 *
 * @module
 */
import { z } from "zod";
import { validateIdentifier } from "../tracer/identifiers.ts";
import { InvalidIdentifierError } from "../tracer/errors.ts";
import { DTYPE_BYTES } from "../tracer/types.ts";
import { MAX_REQUEST_BYTES, REQUEST_LIMITS } from "./request_limits.ts";
import type { WorkloadRequest } from "./types.ts";

const identifier = (field: string) =>
  z.string().superRefine((value, context) => {
    try {
      validateIdentifier(field, value);
    } catch (error) {
      if (!(error instanceof InvalidIdentifierError)) throw error;
      context.addIssue({ code: "custom", message: error.message.replace(/^Invalid \S+: /, "") });
    }
  });

const count = z.number().int().positive().max(REQUEST_LIMITS.maxCount);

const REQUEST = z.strictObject({
  tenant_id: identifier("tenant_id"),
  request_id: identifier("request_id"),
  model_id: identifier("model_id"),
  tokens: z.number().int().nonnegative().max(REQUEST_LIMITS.maxTokens),
  layers: count,
  kv_heads: count,
  head_dim: count,
  dtype: z.enum(Object.keys(DTYPE_BYTES) as [string, ...string[]]),
}).refine(
  (r) =>
    2 * r.layers * r.kv_heads * r.tokens * r.head_dim * DTYPE_BYTES[r.dtype]! <= MAX_REQUEST_BYTES,
  { message: `KV cache larger than ${MAX_REQUEST_BYTES} bytes` },
);

/**
 * Checks a parsed line against the schema.
 *
 * @param value The line's JSON value.
 * @returns The request, or what is wrong with it (`path: message` of the first issue).
 */
export function schemaRequest(value: unknown): { request: WorkloadRequest } | { why: string } {
  const parsed = REQUEST.safeParse(value);
  if (parsed.success) return { request: parsed.data };
  const issue = parsed.error.issues[0]!;
  const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  return { why: `${path}${issue.message}` };
}
