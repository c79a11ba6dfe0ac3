/**
 * Gzip of "cached body + small per-scrape tail" without recompressing the cached part.
 *
 * The body is deflated once per reload and ended with a sync flush, which leaves the stream
 * byte-aligned with no final block. The tail (the exporter's self-metrics, about 1 KiB) follows
 * as stored blocks (RFC 1951 §3.2.4), the last one final: a stored block references nothing
 * before it, and copying bytes costs far less than a zlib call per scrape (~35 µs here). The
 * CRC-32 of the whole is continued from the body's CRC over the tail (RFC 1952 §2.3.1). The
 * result is one ordinary gzip member, which every client decodes (multi-member gzip is not
 * universally supported).
 *
 * @module
 */
import zlib from "node:zlib";

/** The body's share of every gzip response, computed once per reload. */
export interface GzipPrefix {
  /** Raw deflate of the body, sync-flushed, no final block. */
  deflated: Uint8Array;
  /** CRC-32 of the body. */
  crc: number;
  /** Length of the body in bytes. */
  size: number;
}

// RFC 1952 §2.3: magic, CM=8 (deflate), no flags, MTIME 0, XFL 0, OS 255 (unknown).
const GZIP_HEADER = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

/** Deflates `body` once so {@linkcode gzipWithTail} can reuse it on every scrape. */
export function gzipPrefix(body: Uint8Array): GzipPrefix {
  const deflated = zlib.deflateRawSync(body, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return { deflated, crc: zlib.crc32(body), size: body.length };
}

/** Largest payload of one stored block (LEN is 16 bits). */
const STORED_MAX = 0xffff;

/** One gzip member whose content is the prefix's body followed by `tail`. */
export function gzipWithTail(prefix: GzipPrefix, tail: Uint8Array): Uint8Array<ArrayBuffer> {
  const blocks = Math.max(1, Math.ceil(tail.length / STORED_MAX));
  const tailStart = GZIP_HEADER.length + prefix.deflated.length;
  const trailerStart = tailStart + blocks * 5 + tail.length;
  const out = new Uint8Array(trailerStart + 8);
  const view = new DataView(out.buffer);
  out.set(GZIP_HEADER, 0);
  out.set(prefix.deflated, GZIP_HEADER.length);
  let at = tailStart;
  for (let block = 0; block < blocks; block++) {
    const chunk = tail.subarray(block * STORED_MAX, (block + 1) * STORED_MAX);
    // Block header: BFINAL on the last block, BTYPE 00 (stored); then LEN and its complement.
    out[at] = block === blocks - 1 ? 1 : 0;
    view.setUint16(at + 1, chunk.length, true);
    view.setUint16(at + 3, ~chunk.length & 0xffff, true);
    out.set(chunk, at + 5);
    at += 5 + chunk.length;
  }
  view.setUint32(trailerStart, zlib.crc32(tail, prefix.crc), true);
  view.setUint32(trailerStart + 4, (prefix.size + tail.length) >>> 0, true);
  return out;
}
