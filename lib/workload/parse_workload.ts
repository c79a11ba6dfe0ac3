/**
 * The JSONL workload format of `kvh trace --workload` (DESIGN.md §3): one request per line; the
 * first bad line stops the run with its line number. A line is checked by hand; one the check does
 * not accept goes to the zod schema (_request_schema.ts, loaded then), which decides it and words
 * the error. zod on every line cost a tenth of a 20,000-request trace.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import { concatBytes } from "../io/concat_bytes.ts";
import { isValidIdentifier } from "../tracer/identifiers.ts";
import { DTYPE_BYTES } from "../tracer/types.ts";
import { MAX_REQUEST_BYTES, REQUEST_LIMITS } from "./request_limits.ts";
import type { WorkloadRequest } from "./types.ts";

export { MAX_REQUEST_BYTES };

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
 * The first key repeated in the top-level object of `text`, which `JSON.parse` accepted already.
 * `JSON.parse` silently keeps the last copy, so `{"tenant_id":"a","tenant_id":"b"}` would replay
 * as tenant `b` while a reader of the file sees `a`. A request's values are scalars, so only the
 * top level is checked; keys are compared decoded (`"\u0061"` is `"a"`).
 */
function duplicateTopLevelKey(text: string, value: unknown): string | undefined {
  // JSON.parse keeps one member per distinct key: when the text holds as many top-level keys,
  // none repeats, and no key needs decoding and remembering (most of this check's cost).
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    let count = 0;
    forEachTopLevelKey(text, () => {
      count++;
      return false;
    });
    if (count === Object.keys(value).length) return undefined;
  }
  const keys = new Set<string>();
  let duplicate: string | undefined;
  forEachTopLevelKey(text, (start, end) => {
    // Only a key with an escape needs decoding.
    const key: string = text.lastIndexOf("\\", end) > start
      ? JSON.parse(text.slice(start, end + 1))
      : text.slice(start + 1, end);
    if (keys.has(key)) duplicate = key;
    keys.add(key);
    return duplicate !== undefined;
  });
  return duplicate;
}

/**
 * Calls `onKey` with the offsets of the quotes around each key of the top-level object of
 * `text` (valid JSON), in order, until it returns true. Strings are skipped with indexOf, not
 * character by character.
 */
function forEachTopLevelKey(text: string, onKey: (start: number, end: number) => boolean): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
    else if (c === QUOTE) {
      const start = i;
      i = text.indexOf('"', i + 1);
      // A quote after an odd run of backslashes is escaped and does not end the string.
      while (backslashesBefore(text, i) % 2 === 1) i = text.indexOf('"', i + 1);
      if (depth === 1 && colonFollows(text, i + 1) && onKey(start, i)) return;
    }
  }
}

/** Whether JSON whitespace, then the colon that makes the string before it a key, start at `at`. */
function colonFollows(text: string, at: number): boolean {
  let c = text.charCodeAt(at);
  while (c === SPACE || c === TAB || c === LF || c === CR) c = text.charCodeAt(++at);
  return c === COLON;
}

function backslashesBefore(text: string, at: number): number {
  let count = 0;
  while (text.charCodeAt(at - 1 - count) === BACKSLASH) count++;
  return count;
}

const [OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET, QUOTE, BACKSLASH, COLON] = [
  ...'{}[]"\\:',
].map((c) => c.charCodeAt(0));
const [SPACE, TAB, LF, CR] = [0x20, 0x09, 0x0a, 0x0d];

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
 * assert.equal((await parseWorkloadLine(line, { source: "w.jsonl", line: 1 })).tokens, 16);
 * ```
 */
export async function parseWorkloadLine(
  text: string,
  where: { source: string; line: number },
): Promise<WorkloadRequest> {
  const parsed = readLine(text, where);
  return "request" in parsed ? parsed.request : await bySchema(parsed.value, where);
}

/** A line's request when the hand-written check accepts it, else its JSON value for the schema. */
function readLine(
  text: string,
  where: { source: string; line: number },
): { request: WorkloadRequest } | { value: unknown } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WorkloadError(where.source, where.line, "malformed JSON");
  }
  const duplicate = duplicateTopLevelKey(text, value);
  if (duplicate !== undefined) {
    throw new WorkloadError(where.source, where.line, `duplicate key ${JSON.stringify(duplicate)}`);
  }
  const request = plainRequest(value);
  return request === undefined ? { value } : { request };
}

async function bySchema(
  value: unknown,
  where: { source: string; line: number },
): Promise<WorkloadRequest> {
  const { schemaRequest } = await import("./_request_schema.ts");
  const checked = schemaRequest(value);
  if ("why" in checked) throw new WorkloadError(where.source, where.line, checked.why);
  return checked.request;
}

const REQUEST_KEYS = 8;

/**
 * The request `value` is when it is plainly valid: an object of exactly the eight fields, each
 * within the schema's bounds. It accepts nothing the schema refuses (and returns the fields the
 * schema would); anything else, valid or not, is left to the schema.
 */
function plainRequest(value: unknown): WorkloadRequest | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const fields = value as Record<string, unknown>;
  if (Object.keys(fields).length !== REQUEST_KEYS) return undefined;
  const { tenant_id, request_id, model_id, tokens, layers, kv_heads, head_dim, dtype } = fields;
  if (
    !isValidIdentifier(tenant_id) || !isValidIdentifier(request_id) ||
    !isValidIdentifier(model_id) || !isCount(tokens, 0, REQUEST_LIMITS.maxTokens) ||
    !isCount(layers, 1, REQUEST_LIMITS.maxCount) ||
    !isCount(kv_heads, 1, REQUEST_LIMITS.maxCount) ||
    !isCount(head_dim, 1, REQUEST_LIMITS.maxCount) || typeof dtype !== "string" ||
    !Object.hasOwn(DTYPE_BYTES, dtype) ||
    2 * layers * kv_heads * tokens * head_dim * DTYPE_BYTES[dtype]! > MAX_REQUEST_BYTES
  ) return undefined;
  return { tenant_id, request_id, model_id, tokens, layers, kv_heads, head_dim, dtype };
}

function isCount(value: unknown, min: number, max: number): value is number {
  return Number.isInteger(value) && (value as number) >= min && (value as number) <= max;
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
 * @param input The file's bytes: a stream, or anything that reads like a `Deno.FsFile` (a file or
 * `Deno.stdin`, read directly: a file's `.readable` makes Deno load its streams implementation,
 * ~15 ms of a short trace).
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
  input: ReadableStream<Uint8Array> | WorkloadReader,
  source: string,
): AsyncGenerator<WorkloadRequest> {
  let line = 0;
  // The line being read: its pieces and their total length. A newline is searched for only
  // in bytes not yet searched (re-splitting the whole partial line on every chunk made one long
  // line quadratic: 60 MB took 115 s).
  let pieces: Uint8Array[] = [];
  let length = 0;
  const reader = "getReader" in input ? input.getReader() : chunksOf(input);
  // Sync for the common line: an await per line would cost a turn of the microtask queue.
  const lineOf = (): WorkloadRequest | Promise<WorkloadRequest> | undefined => {
    line++;
    const bytes = pieces.length === 1 ? pieces[0]! : concatBytes(pieces);
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
        if (request !== undefined) yield request instanceof Promise ? await request : request;
        start = newline + 1;
      }
    }
    if (length > 0) {
      const request = lineOf();
      if (request !== undefined) yield request instanceof Promise ? await request : request;
    }
  } finally {
    reader.releaseLock();
  }
}

/** A source of bytes read like a `Deno.FsFile`: `read` fills a buffer, `null` at the end. */
export interface WorkloadReader {
  /**
   * Reads into `buffer`.
   *
   * @param buffer Where to put the bytes.
   * @returns How many bytes were read, or `null` at the end of the input.
   */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** The chunks of a reader, through the reader interface of a stream; a chunk's buffer is reused. */
function chunksOf(input: WorkloadReader): {
  read(): Promise<ReadableStreamReadResult<Uint8Array>>;
  releaseLock(): void;
} {
  const buffer = new Uint8Array(64 * 1024);
  return {
    async read() {
      const length = await input.read(buffer);
      return length === null
        ? { done: true, value: undefined }
        : { done: false, value: buffer.subarray(0, length) };
    },
    releaseLock() {},
  };
}

const decoder = new TextDecoder("utf-8", { fatal: true });

// One line's bytes without the newline: undefined for a blank line; a promise when the line is
// left to the schema.
function parseLineBytes(
  bytes: Uint8Array,
  where: { source: string; line: number },
): WorkloadRequest | Promise<WorkloadRequest> | undefined {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new WorkloadError(where.source, where.line, "invalid UTF-8");
  }
  if (text.endsWith("\r")) text = text.slice(0, -1);
  if (text.trim() === "") return undefined;
  const parsed = readLine(text, where);
  return "request" in parsed ? parsed.request : bySchema(parsed.value, where);
}
