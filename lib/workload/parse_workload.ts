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

// JSON whitespace, then the colon that makes the string before it a key.
const KEY_COLON = /[ \t\n\r]*:/y;

/**
 * The first key repeated in the top-level object of `text`, which `JSON.parse` accepted already.
 * `JSON.parse` silently keeps the last copy, so `{"tenant_id":"a","tenant_id":"b"}` would replay
 * as tenant `b` while a reader of the file sees `a`. A request's values are scalars, so only the
 * top level is checked; keys are compared decoded (`"\u0061"` is `"a"`).
 */
function duplicateTopLevelKey(text: string): string | undefined {
  const keys = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++;
      KEY_COLON.lastIndex = i + 1;
      if (depth !== 1 || !KEY_COLON.test(text)) continue;
      const key: string = JSON.parse(text.slice(start, i + 1));
      if (keys.has(key)) return key;
      keys.add(key);
    }
  }
  return undefined;
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
  const duplicate = duplicateTopLevelKey(text);
  if (duplicate !== undefined) {
    throw new WorkloadError(where.source, where.line, `duplicate key ${JSON.stringify(duplicate)}`);
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
 * Longest workload line, in bytes without its newline. A request is a few hundred bytes; the cap
 * stops a file that is not a workload (one huge line) long before it fills memory.
 */
export const MAX_WORKLOAD_LINE_BYTES = 64 * 1024;

/**
 * Streams the requests of a JSONL workload. Blank lines are skipped; the first bad line throws
 * a {@linkcode WorkloadError} after the requests before it were yielded. A line longer than
 * {@linkcode MAX_WORKLOAD_LINE_BYTES} is refused as soon as that many bytes have been read, and
 * each byte is looked at once, so the time is linear in the input.
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
  // The line being read: its pieces and their total length. A newline is searched for only
  // in bytes not yet searched (re-splitting the whole partial line on every chunk made one long
  // line quadratic: 60 MB took 115 s).
  let pieces: Uint8Array[] = [];
  let length = 0;
  const reader = stream.getReader();
  const lineOf = (): WorkloadRequest | undefined => {
    line++;
    const bytes = pieces.length === 1 ? pieces[0]! : concat(pieces, length);
    pieces = [];
    length = 0;
    return parseLineBytes(bytes, { source, line });
  };
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      let start = 0;
      while (start < value.length) {
        const newline = value.indexOf(0x0a, start);
        const end = newline === -1 ? value.length : newline;
        length += end - start;
        if (length > MAX_WORKLOAD_LINE_BYTES) {
          throw new WorkloadError(
            source,
            line + 1,
            `line longer than ${MAX_WORKLOAD_LINE_BYTES} bytes`,
          );
        }
        // The stream may reuse its chunk once read again: keep a copy of a partial line.
        pieces.push(newline === -1 ? value.slice(start) : value.subarray(start, end));
        if (newline === -1) break;
        const request = lineOf();
        if (request !== undefined) yield request;
        start = newline + 1;
      }
    }
    if (length > 0) {
      const request = lineOf();
      if (request !== undefined) yield request;
    }
  } finally {
    reader.releaseLock();
  }
}

function concat(pieces: Uint8Array[], length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    bytes.set(piece, offset);
    offset += piece.length;
  }
  return bytes;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

// One line's bytes without the newline: undefined for a blank line.
function parseLineBytes(
  bytes: Uint8Array,
  where: { source: string; line: number },
): WorkloadRequest | undefined {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new WorkloadError(where.source, where.line, "invalid UTF-8");
  }
  if (text.endsWith("\r")) text = text.slice(0, -1);
  return text.trim() === "" ? undefined : parseWorkloadLine(text, where);
}
