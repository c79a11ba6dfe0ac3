/**
 * Collects the digest checks of a run of lines for one {@linkcode NativeDigests} call: each
 * record's message and expected hex digests are encoded into one buffer and described in a
 * table. A record the native call confirms skips node:crypto; any other record is hashed again
 * by the TypeScript path, which alone decides and words failures, so both paths report alike.
 *
 * @module
 */
import type { V1LineScan } from "./format_v1.ts";
import { splicedBodyEnd } from "./format_v2.ts";
import {
  DIGEST_DESC_WORDS,
  loadNativeDigests,
  type NativeDigests,
  NO_MAC,
} from "./native_digest.ts";

/** Verdict bit: the record's hash was confirmed natively. */
export const HASH_CONFIRMED = 1;
/** Verdict bit: the record's MAC was confirmed natively. */
export const MAC_CONFIRMED = 2;

/** `,"hash":"`: what precedes a v2 line's hash digits. */
const HASH_PREFIX_LEN = 9;
const HEX_LEN = 64;
const NON_ASCII_RE = /[^\x20-\x7e]/;
const encoder = new TextEncoder();

/** One batch of records; reuse it with {@linkcode DigestBatch.reset}. */
export class DigestBatch {
  #native: NativeDigests;
  #data = new Uint8Array(1 << 16);
  #desc = new Uint32Array(DIGEST_DESC_WORDS * 256);
  #out = new Uint8Array(256);
  #at = 0;
  #count = 0;

  constructor(native: NativeDigests) {
    this.#native = native;
  }

  /** Empties the batch. */
  reset(): void {
    this.#at = 0;
    this.#count = 0;
  }

  /**
   * Adds a v2 line in the spliced form: its canonical body is `line.slice(0, end) + "}"`.
   *
   * @returns The record's index, or -1 when the line cannot be checked natively.
   */
  addV2Line(line: string, end: number): number {
    const at = this.#at;
    const written = this.#encode(line);
    // The body's byte length follows from the tail's only when the tail is ASCII (printable
    // ASCII here: the tail of a line in the spliced form can hold nothing else).
    if (written !== line.length && NON_ASCII_RE.test(line.slice(end))) return -1;
    const bodyBytes = written - (line.length - end);
    const hasMac = line.length - end > HASH_PREFIX_LEN + HEX_LEN + 2;
    return this.#add(
      at,
      bodyBytes,
      at + written - 1,
      1,
      at + bodyBytes + HASH_PREFIX_LEN,
      hasMac ? at + written - 2 - HEX_LEN : NO_MAC,
    );
  }

  /**
   * Adds a message with the hex digests it must have.
   *
   * @returns The record's index, or -1 when the expected digests are not 64 ASCII characters.
   */
  addMessage(message: string, hash: string, mac: string | undefined): number {
    const at = this.#at;
    const written = this.#encode(message);
    const hashAt = this.#at;
    if (this.#encode(hash) !== HEX_LEN) return -1;
    const macAt = this.#at;
    if (mac !== undefined && this.#encode(mac) !== HEX_LEN) return -1;
    return this.#add(at, written, 0, 0, hashAt, mac === undefined ? NO_MAC : macAt);
  }

  /**
   * Checks every record added since the last reset.
   *
   * @param key The HMAC key, if MACs are checked.
   * @returns Verdict bits ({@linkcode HASH_CONFIRMED}, {@linkcode MAC_CONFIRMED}) by index;
   * valid until the next call.
   */
  run(key: Uint8Array | undefined): Uint8Array {
    this.#native.check(this.#data, this.#desc, this.#count, key, this.#out);
    return this.#out;
  }

  #encode(text: string): number {
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    const need = this.#at + 3 * text.length;
    if (need > this.#data.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.#data.length));
      grown.set(this.#data.subarray(0, this.#at));
      this.#data = grown;
    }
    const { written } = encoder.encodeInto(text, this.#data.subarray(this.#at));
    this.#at += written;
    return written;
  }

  #add(...words: number[]): number {
    const index = this.#count;
    if ((index + 1) * DIGEST_DESC_WORDS > this.#desc.length) {
      const grown = new Uint32Array(2 * this.#desc.length);
      grown.set(this.#desc);
      this.#desc = grown;
      this.#out = new Uint8Array(2 * this.#out.length);
    }
    this.#desc.set(words, index * DIGEST_DESC_WORDS);
    this.#count++;
    return index;
  }
}

let shared: DigestBatch | undefined;

/**
 * Confirms natively the digests of every line of a run that has the v2 spliced form or a v1
 * scan.
 *
 * @param lines Decoded lines (other entries are skipped).
 * @param scans The v1 scan of each line, `null` where it has none.
 * @param key The HMAC key, if MACs are checked.
 * @returns Verdict bits per line, or `undefined` without the native library.
 */
export function confirmDigests(
  lines: ReadonlyArray<string | object>,
  scans: ReadonlyArray<V1LineScan | null>,
  key: Uint8Array | undefined,
): Uint8Array | undefined {
  const native = loadNativeDigests();
  if (native === undefined) return undefined;
  shared ??= new DigestBatch(native);
  const batch = shared;
  batch.reset();
  const index = new Int32Array(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const scan = scans[i];
    if (scan) {
      index[i] = batch.addMessage(scan.message, scan.currHash, key && scan.mac);
      continue;
    }
    const end = typeof line === "string" ? splicedBodyEnd(line) : -1;
    index[i] = end < 0 ? -1 : batch.addV2Line(line as string, end);
  }
  const out = batch.run(key);
  const confirmed = new Uint8Array(lines.length);
  for (let i = 0; i < lines.length; i++) if (index[i]! >= 0) confirmed[i] = out[index[i]!]!;
  return confirmed;
}
