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
}

const NEWLINE = 0x0a;

/**
 * Reads a file as batches of lines, in order. Each batch holds the lines completed by one read,
 * which lets a caller hand whole batches to other threads.
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
  const { maxLineBytes = 16 * 1024 * 1024, chunkBytes = 1024 * 1024 } = options;
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const buffer = new Uint8Array(chunkBytes);
  // The partial line carried from one read to the next, capped at maxLineBytes.
  let carry: Uint8Array[] = [];
  let carryBytes = 0;
  let skipping = false;
  let lineNo = 0;

  const decodeOne = (bytes: Uint8Array, terminated: boolean): LogLine => {
    lineNo++;
    try {
      return { lineNo, text: decoder.decode(bytes), terminated };
    } catch {
      return { lineNo, text: undefined, terminated, problem: "invalid_utf8" };
    }
  };
  const finishCarry = (tail: Uint8Array, terminated: boolean): LogLine => {
    if (skipping || carryBytes + tail.length > maxLineBytes) {
      skipping = false;
      carry = [];
      carryBytes = 0;
      lineNo++;
      return { lineNo, text: undefined, terminated, problem: "too_long" };
    }
    const whole = new Uint8Array(carryBytes + tail.length);
    let at = 0;
    for (const part of carry) {
      whole.set(part, at);
      at += part.length;
    }
    whole.set(tail, at);
    carry = [];
    carryBytes = 0;
    return decodeOne(whole, terminated);
  };

  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    const chunk = buffer.subarray(0, n);
    const batch: LogLine[] = [];
    let start = 0;
    const first = chunk.indexOf(NEWLINE);
    if (first === -1) {
      keep(chunk);
      continue;
    }
    if (carryBytes > 0 || skipping) {
      batch.push(finishCarry(chunk.subarray(0, first), true));
      start = first + 1;
    }
    const last = chunk.lastIndexOf(NEWLINE);
    if (last >= start) {
      // Decoding every complete line of the read at once is far cheaper than line by line; a
      // region with invalid UTF-8 or an over-long line falls back to one line at a time.
      const region = chunk.subarray(start, last);
      let texts: string[] | undefined;
      if (region.length <= maxLineBytes) {
        try {
          texts = decoder.decode(region).split("\n");
        } catch {
          texts = undefined;
        }
      }
      if (texts !== undefined) {
        for (const text of texts) batch.push({ lineNo: ++lineNo, text, terminated: true });
      } else {
        let at = start;
        while (at <= last) {
          const end = chunk.indexOf(NEWLINE, at);
          const bytes = chunk.subarray(at, end);
          if (bytes.length > maxLineBytes) {
            batch.push({
              lineNo: ++lineNo,
              text: undefined,
              terminated: true,
              problem: "too_long",
            });
          } else batch.push(decodeOne(bytes, true));
          at = end + 1;
        }
      }
    }
    keep(chunk.subarray(last + 1));
    if (batch.length > 0) yield batch;
  }
  if (carryBytes > 0 || skipping) yield [finishCarry(new Uint8Array(0), false)];

  function keep(part: Uint8Array): void {
    if (part.length === 0 || skipping) return;
    if (carryBytes + part.length > maxLineBytes) {
      skipping = true;
      carry = [];
      carryBytes = 0;
      return;
    }
    carry.push(part.slice());
    carryBytes += part.length;
  }
}
