/**
 * Streams the lines of a log file with bounded memory (DESIGN.md §4: one UTF-8 JSON object per
 * line, `\n`-terminated). Lines are split on bytes, so a line longer than the cap is reported
 * and skipped without ever being held whole, and invalid UTF-8 is reported per line.
 *
 * @module
 */

/** One physical line of a log file. */
export interface LogLine {
  /** 1-based physical line number. */
  lineNo: number;
  /** The line without its `\n`; `undefined` when it is too long or not valid UTF-8. */
  text: string | undefined;
  /** Whether the line ended with `\n` (false only for a torn last line). */
  terminated: boolean;
  /** Why `text` is missing. */
  problem?: "too_long" | "invalid_utf8";
}

/** Options of {@linkcode readLines}. */
export interface ReadLinesOptions {
  /**
   * Longest line kept, in bytes; longer lines come back as `too_long` without being buffered.
   *
   * @default {16777216}
   */
  maxLineBytes?: number;
  /**
   * Size of each read.
   *
   * @default {1048576}
   */
  chunkBytes?: number;
  /**
   * {@linkcode readChunks}: read every run into one buffer, reused, so a run is valid only until
   * the next one is asked for. Fresh memory for each read costs a page fault per 4 KiB, which
   * took ten times as long as the reads themselves over a large log.
   *
   * @default {false}
   */
  reuseBuffer?: boolean;
  /**
   * {@linkcode readChunks}: read with the reader's `readSync` when it has one. An asynchronous
   * read leaves the thread idle while another copies the bytes (about a tenth of a verify's
   * time over a large log); a synchronous one blocks the event loop for each read instead.
   *
   * @default {false}
   */
  synchronous?: boolean;
}

const NEWLINE = 0x0a;
const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * A run of a log file as read: complete lines as raw bytes (so that decoding and checking can
 * happen in another thread), a line over the cap that was skipped, or the unterminated last line.
 */
export type LogChunk =
  /**
   * One or more complete lines, `\n` between them, the last one's `\n` left out. Lines may be
   * longer than the cap (see {@linkcode decodeLines}). The chunk owns its buffer, which can be
   * transferred to a Worker.
   */
  | { kind: "lines"; bytes: Uint8Array<ArrayBuffer> }
  /** A `\n`-terminated line longer than the cap, skipped without being held whole. */
  | { kind: "too_long" }
  /** The last line has no `\n`: its bytes, or undefined when it is longer than the cap. */
  | { kind: "torn"; bytes: Uint8Array | undefined };

/** Why a line has no text. */
export type LineProblem = "too_long" | "invalid_utf8";

/** A line that could not be decoded, as returned by {@linkcode decodeLines}. */
export interface UndecodedLine {
  problem: LineProblem;
}

const TOO_LONG: UndecodedLine = Object.freeze({ problem: "too_long" });
const INVALID_UTF8: UndecodedLine = Object.freeze({ problem: "invalid_utf8" });
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// Decoding without validation is several times faster than with it. Invalid UTF-8 then shows
// as U+FFFD, so a run without one decoded to exactly what the strict decoder gives; a run with
// one (invalid bytes, or a real U+FFFD) is decoded again strictly.
const lenient = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Reads a file as runs of raw lines, in order, one run per read. Every run of complete lines
 * lives in a buffer of its own, so a caller may hand it to a Worker without copying (unless
 * `reuseBuffer` is set).
 *
 * @param file An open file (or any reader); it is read to its end, not closed.
 * @param options Line cap, read size and buffer reuse.
 * @returns The runs.
 */
export async function* readChunks(
  file: {
    read(buffer: Uint8Array): Promise<number | null>;
    readSync?(buffer: Uint8Array): number | null;
  },
  options: ReadLinesOptions = {},
): AsyncGenerator<LogChunk> {
  const { maxLineBytes = DEFAULT_MAX_LINE_BYTES, chunkBytes = 1024 * 1024 } = options;
  const reuse = options.reuseBuffer ?? false;
  // The partial line carried from one read to the next, at most maxLineBytes; while skipping an
  // over-long line nothing is carried.
  let carry: Uint8Array | undefined;
  let skipping = false;
  let spare: Uint8Array<ArrayBuffer> | undefined;
  while (true) {
    const carried = carry?.length ?? 0;
    let buffer: Uint8Array<ArrayBuffer>;
    if (reuse && spare !== undefined && spare.length >= carried + chunkBytes) buffer = spare;
    else {
      // Room for a carried line of up to 64 KiB, so one buffer serves the whole file.
      buffer = new Uint8Array(carried + chunkBytes + (reuse ? 64 * 1024 : 0));
      if (reuse) spare = buffer;
    }
    if (carry !== undefined) {
      // With reuse the carry may lie in this buffer: set() copies overlapping ranges correctly,
      // and the carry is where it was moved to (the end of the file may come next).
      buffer.set(carry);
      carry = buffer.subarray(0, carried);
    }
    const target = buffer.subarray(carried, carried + chunkBytes);
    const n = options.synchronous && file.readSync !== undefined
      ? file.readSync(target)
      : await file.read(target);
    if (n === null) break;
    const filled = buffer.subarray(0, carried + n);
    let start = 0;
    if (skipping) {
      const end = filled.indexOf(NEWLINE);
      if (end === -1) continue;
      skipping = false;
      start = end + 1;
      yield { kind: "too_long" };
    }
    const last = filled.lastIndexOf(NEWLINE);
    if (last < start) {
      keep(filled.subarray(start));
      continue;
    }
    // The tail is copied out before the run is handed on: the consumer may transfer the buffer
    // (with reuse it stays in place, outside the run, until the next read moves it to the start).
    const tail = filled.subarray(last + 1);
    keep(reuse ? tail : tail.slice());
    yield { kind: "lines", bytes: filled.subarray(start, last) };
  }
  if (carry !== undefined || skipping) yield { kind: "torn", bytes: carry };

  function keep(part: Uint8Array): void {
    if (part.length > maxLineBytes) {
      skipping = true;
      carry = undefined;
    } else carry = part.length === 0 ? undefined : part;
  }
}

/**
 * Splits a run of complete lines ({@linkcode LogChunk} `lines`) and decodes each line.
 *
 * @param bytes The lines, `\n` between them.
 * @param maxLineBytes Longest line decoded; a longer one comes back as `too_long`.
 * @returns One entry per line: its text, or why it has none.
 */
export function decodeLines(
  bytes: Uint8Array,
  maxLineBytes: number = DEFAULT_MAX_LINE_BYTES,
): (string | UndecodedLine)[] {
  // Decoding the whole run at once is far cheaper than line by line; a run with invalid UTF-8 or
  // that could hold an over-long line falls back to one line at a time.
  if (bytes.length <= maxLineBytes) {
    const text = lenient.decode(bytes);
    if (!text.includes("\uFFFD")) return text.split("\n");
    try {
      return decoder.decode(bytes).split("\n");
    } catch {
      // Some line is not valid UTF-8: find which below.
    }
  }
  const out: (string | UndecodedLine)[] = [];
  let at = 0;
  while (true) {
    let end = bytes.indexOf(NEWLINE, at);
    if (end === -1) end = bytes.length;
    out.push(end - at > maxLineBytes ? TOO_LONG : decodeOne(bytes.subarray(at, end)));
    if (end === bytes.length) return out;
    at = end + 1;
  }
}

/**
 * Decodes one line as {@linkcode decodeLines} decodes each line of a run.
 *
 * @param bytes The line without its `\n`.
 * @param maxLineBytes Longest line decoded; a longer one comes back as `too_long`.
 * @returns Its text, or why it has none.
 */
export function decodeLine(
  bytes: Uint8Array,
  maxLineBytes: number = DEFAULT_MAX_LINE_BYTES,
): string | UndecodedLine {
  return bytes.length > maxLineBytes ? TOO_LONG : decodeOne(bytes);
}

function decodeOne(bytes: Uint8Array): string | UndecodedLine {
  try {
    return decoder.decode(bytes);
  } catch {
    return INVALID_UTF8;
  }
}

/**
 * Reads a file as batches of decoded lines, in order. Each batch holds the lines completed by
 * one read.
 *
 * @param file An open file (or any reader); it is read to its end, not closed.
 * @param options Line cap and read size.
 * @returns Batches of lines.
 *
 * @example Usage
 * ```ts
 * import { readLines } from "./reader.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "a\nb");
 * using file = await Deno.open(path);
 * const lines = [];
 * for await (const batch of readLines(file)) lines.push(...batch);
 * assert.deepEqual(lines.map((l) => [l.text, l.terminated]), [["a", true], ["b", false]]);
 * await Deno.remove(path);
 * ```
 */
export async function* readLines(
  file: { read(buffer: Uint8Array): Promise<number | null> },
  options: ReadLinesOptions = {},
): AsyncGenerator<LogLine[]> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let lineNo = 0;
  const toLine = (decoded: string | UndecodedLine, terminated: boolean): LogLine =>
    typeof decoded === "string"
      ? { lineNo: ++lineNo, text: decoded, terminated }
      : { lineNo: ++lineNo, text: undefined, terminated, problem: decoded.problem };
  for await (const chunk of readChunks(file, options)) {
    if (chunk.kind === "lines") {
      yield decodeLines(chunk.bytes, maxLineBytes).map((decoded) => toLine(decoded, true));
    } else if (chunk.kind === "too_long") {
      yield [toLine(TOO_LONG, true)];
    } else {
      yield [toLine(chunk.bytes === undefined ? TOO_LONG : decodeOne(chunk.bytes), false)];
    }
  }
}
