/**
 * The JSONL workload format of `kvh trace --workload` (DESIGN.md §3): one request per line,
 * validated with zod; the first bad line stops the run with its line number.
 *
 * @module
 */
import { z } from "zod";
import { KvhError } from "../errors.ts";
import { validateIdentifier } from "../tracer/identifiers.ts";
import { InvalidIdentifierError } from "../tracer/errors.ts";
import { DTYPE_BYTES } from "../tracer/types.ts";
import type { WorkloadRequest } from "./types.ts";

/** Largest KV cache one request may ask for (16 GiB): a typo must not exhaust memory. */
export const MAX_REQUEST_BYTES = 16 * 1024 ** 3;

const identifier = (field: string) =>
  z.string().superRefine((value, context) => {
    try {
      validateIdentifier(field, value);
    } catch (error) {
      if (!(error instanceof InvalidIdentifierError)) throw error;
      context.addIssue({ code: "custom", message: error.message.replace(/^Invalid \S+: /, "") });
    }
  });

const count = z.number().int().positive().max(1_000_000);

const REQUEST = z.strictObject({
  tenant_id: identifier("tenant_id"),
  request_id: identifier("request_id"),
  model_id: identifier("model_id"),
  tokens: z.number().int().nonnegative().max(10_000_000),
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
 * A workload line that is not a valid request (exit 1). `source` and `line` say where.
 *
 * @example Usage
 * ```ts
 * import { WorkloadError } from "./parse_workload.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new WorkloadError("w.jsonl", 3, "malformed JSON");
 * assert.equal(error.message, "Invalid workload w.jsonl:3: malformed JSON");
 * ```
 */
export class WorkloadError extends KvhError {
  /** File name (or `-` for stdin). */
  readonly source: string;
  /** 1-based line number. */
  readonly line: number;

  /**
   * Creates the error.
   *
   * @param source File name.
   * @param line 1-based line number.
   * @param why What was wrong.
   */
  constructor(source: string, line: number, why: string) {
    super("workload_malformed", `Invalid workload ${source}:${line}: ${why}`);
    this.name = "WorkloadError";
    this.source = source;
    this.line = line;
  }
}

/**
 * Parses one workload line.
 *
 * @param text The line, without its newline.
 * @param where File name and 1-based line number, for the error.
 * @returns The request.
 * @throws {WorkloadError} When the line is not a valid request.
 *
 * @example Usage
 * ```ts
 * import { parseWorkloadLine } from "./parse_workload.ts";
 * import assert from "node:assert/strict";
 *
 * const line = JSON.stringify({
 *   tenant_id: "acme", request_id: "r1", model_id: "llama-3-8b",
 *   tokens: 16, layers: 32, kv_heads: 8, head_dim: 128, dtype: "float16",
 * });
 * assert.equal(parseWorkloadLine(line, { source: "w.jsonl", line: 1 }).tokens, 16);
 * ```
 */
export function parseWorkloadLine(
  text: string,
  where: { source: string; line: number },
): WorkloadRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WorkloadError(where.source, where.line, "malformed JSON");
  }
  const parsed = REQUEST.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    throw new WorkloadError(where.source, where.line, `${path}${issue.message}`);
  }
  return parsed.data;
}

/**
 * Streams the requests of a JSONL workload. Blank lines are skipped; the first bad line throws
 * a {@linkcode WorkloadError} after the requests before it were yielded.
 *
 * @param stream The file's bytes.
 * @param source Name used in errors.
 * @returns The requests, in order.
 *
 * @example Usage
 * ```ts
 * import { parseWorkload } from "./parse_workload.ts";
 * import assert from "node:assert/strict";
 *
 * const text = JSON.stringify({
 *   tenant_id: "acme", request_id: "r1", model_id: "m", tokens: 1, layers: 1, kv_heads: 1,
 *   head_dim: 8, dtype: "int8",
 * }) + "\n\n";
 * const requests = await Array.fromAsync(parseWorkload(ReadableStream.from([new TextEncoder().encode(text)]), "w"));
 * assert.equal(requests.length, 1);
 * ```
 */
export async function* parseWorkload(
  stream: ReadableStream<Uint8Array>,
  source: string,
): AsyncGenerator<WorkloadRequest> {
  let line = 0;
  let partial = "";
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const reader = stream.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      let text: string;
      try {
        text = done ? decoder.decode() : decoder.decode(value, { stream: true });
      } catch {
        throw new WorkloadError(source, line + 1, "invalid UTF-8");
      }
      partial += text;
      const lines = partial.split("\n");
      partial = done ? "" : lines.pop()!;
      for (const raw of lines) {
        line++;
        const trimmed = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (trimmed.trim() === "") continue;
        yield parseWorkloadLine(trimmed, { source, line });
      }
      if (done) return;
    }
  } finally {
    reader.releaseLock();
  }
}
