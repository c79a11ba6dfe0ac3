/**
 * The Deno FFI binding of `libkvh_hash.so` (ffi/native/kvh_hash.c, built by
 * ffi/native/build.sh): checks the SHA-256 and HMAC-SHA256 of many log records in one call, so
 * verify pays the FFI crossing once per run of lines instead of node:crypto's per-call cost per
 * record. Optional: without the library (or the `ffi` permission) {@linkcode loadNativeDigests}
 * returns `undefined` and verify hashes through `sha256Hex` and `hmacHex` of digest.ts.
 *
 * @module
 */
import { type NativeLibraryLocation, openNativeLibrary } from "../../ffi/native/open_library.ts";

/** File name of the library. */
export const NATIVE_DIGEST_LIBRARY_NAME = "libkvh_hash.so";

/** Words per record in the description table of {@linkcode NativeDigests.check}. */
export const DIGEST_DESC_WORDS = 6;

/** The MAC offset of a record that has no MAC to check. */
export const NO_MAC = 0xffff_ffff;

const ABI_VERSION = 5;

const SYMBOLS = {
  kvh_hash_abi_version: { parameters: [], result: "u32" },
  kvh_hash_check: {
    parameters: ["buffer", "u64", "buffer", "u32", "buffer", "u32", "buffer"],
    result: "void",
  },
  kvh_verify_lines: {
    parameters: [
      "buffer",
      "u64",
      "u32",
      "buffer",
      "u32",
      "u32",
      "u32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "u32",
  },
  kvh_leaf_hashes: { parameters: ["buffer", "u64", "buffer", "u32", "buffer"], result: "u32" },
  kvh_range_append: { parameters: ["buffer", "u64", "buffer", "u64"], result: "void" },
  kvh_subtree_root: { parameters: ["buffer", "u64", "buffer"], result: "void" },
  kvh_sha256: { parameters: ["buffer", "u32", "buffer"], result: "void" },
} as const;

/** Batch digest checks in native code. */
export interface NativeDigests {
  /**
   * Checks `count` records over `data`. Record `i` is described by `desc[6i .. 6i+5]`, offsets
   * into `data`: message offset and length, suffix offset and length (hashed after the message;
   * length 0 for none), offset of the 64 lowercase hex digits its SHA-256 must equal, and
   * offset of those its HMAC-SHA256 must equal ({@linkcode NO_MAC} for none).
   *
   * @param data Messages and expected digests.
   * @param desc The description table.
   * @param count Records described.
   * @param key The HMAC key; `undefined` or empty checks no MAC.
   * @param out Per record: bit 0 set when the hash matches, bit 1 when the MAC matches. A range
   * outside `data` gives 0.
   */
  check(
    data: Uint8Array,
    desc: Uint32Array,
    count: number,
    key: Uint8Array | undefined,
    out: Uint8Array,
  ): void;
  /**
   * Verifies whole log lines (ffi/native/kvh_hash.c `kvh_verify_lines`): for each line of
   * `data` (complete lines, `\n` between them, the last one's left out), in order, until
   * `out.status` is full: `out.ends[i]` is the offset of its end (its `\n`, or the end of
   * `data`), `out.status[i]` its {@linkcode LINE_V2} / {@linkcode LINE_V1} /
   * {@linkcode LINE_LINKED} / {@linkcode LINE_MAC} bits (0: not accepted), and for an accepted
   * line `out.hashAt[i]` the offset of its hash's hex digits and `out.seqs[i]` its seq (v2). A
   * line is accepted only when the TypeScript check certainly passes it as a plain record (not
   * rotate, recovery, prune or forward-secure), with its MAC checked under `key` when given.
   *
   * @param data The lines.
   * @param maxLineBytes Longer lines are not accepted.
   * @param key The HMAC key; `undefined` or empty checks no MAC.
   * @param out Where the verdicts go, from index 0; its capacity is `out.status.length`.
   * @param threads With 2 or more, a large run is checked in two halves at once (the second
   * half's first line is then not marked linked).
   * @returns The number of lines described: fewer than all when the capacity ran out.
   */
  verifyLines(
    data: Uint8Array,
    maxLineBytes: number,
    key: Uint8Array | undefined,
    out: LineVerdicts,
    threads?: number,
  ): number;
  /**
   * RFC 6962 leaf hashes, SHA-256(0x00 ‖ message), of `count` messages of `data`, message `i`
   * at offset `desc[2i]`, length `desc[2i+1]`, into `out` (32 bytes each).
   *
   * @returns How many were hashed: it stops at the first range outside `data`.
   */
  leafHashes(data: Uint8Array, desc: Uint32Array, count: number, out: Uint8Array): number;
  /**
   * Appends packed leaf hashes to a compact range held by level (`levels` is 64 × 32 bytes;
   * level k holds the root of 2^k leaves when bit k of `size` is set).
   */
  rangeAppend(levels: Uint8Array, size: number, leaves: Uint8Array): void;
  /** The Merkle tree hash of one or more packed leaf hashes, into `out`. */
  subtreeRoot(leaves: Uint8Array, out: Uint8Array): void;
  /** SHA-256 of the first `length` bytes of `data` (under 4 GiB), into `out` (32 bytes). */
  sha256(data: Uint8Array, length: number, out: Uint8Array): void;
}

/** Verdict bit of {@linkcode NativeDigests.verifyLines}: an accepted format-v2 line. */
export const LINE_V2 = 1;
/** Verdict bit: an accepted format-v1 line. */
export const LINE_V1 = 2;
/**
 * Verdict bit: accepted, and it links to the line before it, which was accepted in the same
 * call: the same format and MAC presence, its prev the other's hash (v2: and seq one more).
 */
export const LINE_LINKED = 4;
/** Verdict bit: accepted, and it carries a MAC. */
export const LINE_MAC = 8;

/** Per-line outputs of {@linkcode NativeDigests.verifyLines}, all of the same length. */
export interface LineVerdicts {
  status: Uint8Array;
  ends: Uint32Array;
  seqs: Float64Array;
  hashAt: Uint32Array;
}

let loaded: NativeDigests | null | undefined;

/**
 * The native digest library if this process loaded it already (through
 * {@linkcode loadNativeDigests}), without trying to load it: for code that may run where the
 * `ffi` permission is absent or revoked.
 *
 * @returns The library, or `undefined`.
 */
export function loadedNativeDigests(): NativeDigests | undefined {
  return loaded ?? undefined;
}

/**
 * Loads the native digest checker, or returns `undefined` when it cannot be used (see
 * `openNativeLibrary` in ffi/native/open_library.ts). With no location given the result is
 * memoised, so a command can load it before it revokes the `ffi` permission and use it after.
 *
 * @param location Where to look; by default beside the executable, then `ffi/native/build/`.
 * @returns The checker, or `undefined`.
 *
 * @example Usage
 * ```ts
 * import { DIGEST_DESC_WORDS, loadNativeDigests, NO_MAC } from "./native_digest.ts";
 * import { sha256Hex } from "./digest.ts";
 * import assert from "node:assert/strict";
 *
 * const native = loadNativeDigests();
 * if (native !== undefined) {
 *   const data = new TextEncoder().encode("abc" + sha256Hex("abc"));
 *   const desc = new Uint32Array([0, 3, 0, 0, 3, NO_MAC]);
 *   const out = new Uint8Array(1);
 *   native.check(data, desc, desc.length / DIGEST_DESC_WORDS, undefined, out);
 *   assert.equal(out[0], 1);
 * }
 * ```
 */
export function loadNativeDigests(
  location?: NativeLibraryLocation,
): NativeDigests | undefined {
  if (location === undefined && loaded !== undefined) return loaded ?? undefined;
  const library = openNativeLibrary(
    NATIVE_DIGEST_LIBRARY_NAME,
    SYMBOLS,
    { symbol: "kvh_hash_abi_version", version: ABI_VERSION },
    location,
  );
  const digests = library === undefined ? undefined : bind(library.symbols);
  if (location === undefined) loaded = digests ?? null;
  return digests;
}

const NO_KEY = new Uint8Array(1);

function bind(symbols: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"]): NativeDigests {
  return {
    check(data, desc, count, key, out) {
      if (desc.length < count * DIGEST_DESC_WORDS || out.length < count) {
        throw new RangeError(`Cannot check ${count} digests: the table or output is too short`);
      }
      const keyed = key !== undefined && key.length > 0;
      symbols.kvh_hash_check(
        data,
        BigInt(data.length),
        desc,
        count,
        keyed ? key : NO_KEY,
        keyed ? key.length : 0,
        out,
      );
    },
    verifyLines(data, maxLineBytes, key, out, threads = 1) {
      const capacity = out.status.length;
      if (
        out.ends.length < capacity || out.seqs.length < capacity || out.hashAt.length < capacity
      ) {
        throw new RangeError("Cannot verify lines: the outputs differ in length");
      }
      if (data.length > 0xffff_ffff) {
        throw new RangeError(`Cannot verify ${data.length} bytes of lines at once: at most 4 GiB`);
      }
      const keyed = key !== undefined && key.length > 0;
      return symbols.kvh_verify_lines(
        data,
        BigInt(data.length),
        Math.min(maxLineBytes, 0xffff_ffff),
        keyed ? key : NO_KEY,
        keyed ? key.length : 0,
        threads,
        capacity,
        out.status,
        out.ends,
        out.seqs,
        out.hashAt,
      );
    },
    leafHashes(data, desc, count, out) {
      if (desc.length < count * 2 || out.length < count * 32) {
        throw new RangeError(`Cannot hash ${count} leaves: the table or output is too short`);
      }
      return symbols.kvh_leaf_hashes(data, BigInt(data.length), desc, count, out);
    },
    rangeAppend(levels, size, leaves) {
      if (levels.length !== 64 * 32 || leaves.length % 32 !== 0) {
        throw new RangeError("Cannot append leaves: expected 64 levels and whole hashes");
      }
      symbols.kvh_range_append(levels, BigInt(size), leaves, BigInt(leaves.length / 32));
    },
    subtreeRoot(leaves, out) {
      if (leaves.length < 32 || leaves.length % 32 !== 0 || out.length < 32) {
        throw new RangeError("Cannot hash a subtree: expected one or more whole hashes");
      }
      symbols.kvh_subtree_root(leaves, BigInt(leaves.length / 32), out);
    },
    sha256(data, length, out) {
      if (!(length >= 0 && length <= data.length && length < 2 ** 32) || out.length < 32) {
        throw new RangeError("Cannot hash: the length passes the data or the output is short");
      }
      symbols.kvh_sha256(data, length, out);
    },
  };
}
