/**
 * The byte side of a sidecar connection: request lines in, reply lines out, with as few system
 * calls as the traffic allows. Many small releases in flight (one engine worker per request)
 * make the per-line costs of a socket — one read and one write per message — the largest part
 * of a 16 KiB release, so lines come out of a read in batches and the replies finished
 * together go out in one write. Internal to lib/sidecar.
 *
 * @module
 */

import { concatBytes } from "../io/concat_bytes.ts";

const NEWLINE = 10;
// A read takes whatever the socket holds, up to this much: many pipelined lines at once.
const READ_BYTES = 64 * 1024;
// Replies finished together are encoded into a buffer of this size, kept for the connection.
const WRITE_BYTES = 64 * 1024;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * The lines of a connection, one batch per socket read: each line as a string (without its
 * newline; blank lines are skipped), or null for a line longer than `maxBytes`, whose bytes are
 * skipped up to the next newline while the connection goes on.
 *
 * @param conn The connection.
 * @param maxBytes Longest line.
 * @returns The batches, until the peer closes its side.
 */
export async function* readLineBatches(
  conn: Deno.Conn,
  maxBytes: number,
): AsyncGenerator<(string | null)[]> {
  const buffer = new Uint8Array(READ_BYTES);
  let parts: Uint8Array[] = [];
  let size = 0;
  let skipping = false;
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) return;
    const chunk = buffer.subarray(0, n);
    const lines: (string | null)[] = [];
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(NEWLINE, start);
      if (end === -1) {
        if (!skipping) {
          // A copy: the buffer is reused by the next read.
          parts.push(chunk.slice(start));
          size += chunk.length - start;
          if (size > maxBytes) {
            skipping = true;
            parts = [];
            size = 0;
            lines.push(null);
          }
        }
        break;
      }
      if (skipping) {
        skipping = false;
      } else if (size + end - start > maxBytes) {
        parts = [];
        size = 0;
        lines.push(null);
      } else {
        // Most lines lie whole in one read: decoded where they are, with no list of parts.
        const bytes = chunk.subarray(start, end);
        let line: string;
        if (parts.length === 0) line = decoder.decode(bytes);
        else {
          parts.push(bytes);
          line = decoder.decode(concatBytes(parts));
          parts = [];
          size = 0;
        }
        if (line.trim() !== "") lines.push(line);
      }
      start = end + 1;
    }
    if (lines.length > 0) yield lines;
  }
}

/**
 * Writes lines (the daemon's replies, the client's requests), gathering the ones sent while the
 * previous write is under way, or in the same turn of the event loop, into one write. After
 * each write, `written` gets the tags of the lines it carried; with an error when the write
 * failed (the peer went away), and then for every line sent after it too. One write is under
 * way at a time, so every write encodes into the same buffer.
 *
 * @typeParam T What the caller needs back about a line that could not be delivered.
 */
export class LineWriter<T> {
  #conn: Deno.Conn;
  #written: (tags: T[], error?: Error) => Promise<void> | void;
  #lines: string[] = [];
  #tags: T[] = [];
  /** The write that will carry the lines queued now; undefined when none is queued. */
  #next: Promise<void> | undefined;
  #last: Promise<void> = Promise.resolve();
  #broken: Error | undefined;
  #buffer = new Uint8Array(WRITE_BYTES);

  /**
   * Creates the writer.
   *
   * @param conn The connection.
   * @param written Called after each write with the tags of its lines, and why it failed.
   */
  constructor(conn: Deno.Conn, written: (tags: T[], error?: Error) => Promise<void> | void) {
    this.#conn = conn;
    this.#written = written;
  }

  /**
   * Queues one line.
   *
   * @param line The line, without its newline.
   * @param tag What `written` gets for the line; none when it needs nothing.
   * @returns When the write carrying the line is done, and `written` with it.
   */
  send(line: string, tag?: T): Promise<void> {
    this.#lines.push(line);
    if (tag !== undefined) this.#tags.push(tag);
    // The write starts after the previous one, and at the earliest in a later microtask, so the
    // replies of requests that finish together (one batch of releases) share it.
    if (this.#next === undefined) {
      this.#next = this.#last.then(() => this.#write());
      this.#last = this.#next;
    }
    return this.#next;
  }

  /**
   * Waits for every line queued so far.
   *
   * @returns When the last write is done.
   */
  drained(): Promise<void> {
    return this.#last;
  }

  async #write(): Promise<void> {
    const lines = this.#lines;
    const tags = this.#tags;
    this.#lines = [];
    this.#tags = [];
    this.#next = undefined;
    let failed: Error | undefined;
    try {
      if (this.#broken !== undefined) throw this.#broken;
      lines.push("");
      const text = lines.join("\n");
      // UTF-8 needs at most 3 bytes per UTF-16 unit; a rare larger write gets its own buffer.
      const bytes = text.length * 3 <= this.#buffer.length
        ? this.#buffer.subarray(0, encoder.encodeInto(text, this.#buffer).written)
        : encoder.encode(text);
      for (let done = 0; done < bytes.length;) {
        done += await this.#conn.write(bytes.subarray(done));
      }
    } catch (error) {
      this.#broken ??= error as Error;
      failed = this.#broken;
    }
    await this.#written(tags, failed);
  }
}
