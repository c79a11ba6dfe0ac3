/**
 * Merkle hashing of many leaves per call: through the native digest library (one FFI call per
 * batch, OpenSSL's SHA-256) when it loads, else through node:crypto one hash at a time. Deno's
 * node:crypto costs ~5 µs a hash, and a log needs two per record (its leaf and, on average, one
 * node), which made checkpoints slow the writer and proofs over large logs take half a minute.
 *
 * @module
 */
import { loadNativeDigests, type NativeDigests } from "../forensic/native_digest.ts";
import { CompactRange, HASH_BYTES, hashChildren, hashLeaf } from "./merkle.ts";

const encoder = new TextEncoder();

/** Where hashes are computed: the native library, or null for node:crypto. */
export type MerkleHasher = NativeDigests | null;

/**
 * The native hasher when it loads (memoised), else null.
 *
 * @returns The hasher.
 */
export function merkleHasher(): MerkleHasher {
  return loadNativeDigests() ?? null;
}

/**
 * Leaf hashes SHA-256(0x00 ‖ message) of `count` messages of `data`, message `i` at offset
 * `desc[2i]` and length `desc[2i+1]`.
 *
 * @param data The messages.
 * @param desc Offset and length of each.
 * @param count Messages.
 * @param hasher Native or TS.
 * @param out Where the hashes go (32 bytes each); a new array by default.
 * @returns `out`.
 *
 * @example Usage
 * ```ts
 * import { hashLeaves } from "./batch_hash.ts";
 * import { hashLeaf } from "./merkle.ts";
 * import assert from "node:assert/strict";
 *
 * const data = new TextEncoder().encode("ab");
 * const leaves = hashLeaves(data, new Uint32Array([0, 1, 1, 1]), 2);
 * assert.deepEqual(leaves.subarray(32), hashLeaf("b"));
 * ```
 */
export function hashLeaves(
  data: Uint8Array,
  desc: Uint32Array,
  count: number,
  hasher: MerkleHasher = merkleHasher(),
  out: Uint8Array = new Uint8Array(count * HASH_BYTES),
): Uint8Array {
  if (hasher !== null) {
    if (hasher.leafHashes(data, desc, count, out) !== count) {
      throw new RangeError(`Cannot hash ${count} leaves: a message lies outside the data`);
    }
    return out;
  }
  for (let i = 0; i < count; i++) {
    const at = desc[2 * i]!;
    out.set(hashLeaf(data.subarray(at, at + desc[2 * i + 1]!)), i * HASH_BYTES);
  }
  return out;
}

/**
 * Leaf hashes of record bodies (strings, hashed as their UTF-8 bytes).
 *
 * @param bodies The canonical bodies.
 * @param hasher Native or TS.
 * @returns The packed hashes (32 bytes each).
 */
export function hashBodies(
  bodies: readonly string[],
  hasher: MerkleHasher = merkleHasher(),
): Uint8Array {
  let bound = 0;
  for (const body of bodies) bound += body.length * 3;
  const data = new Uint8Array(bound);
  const desc = new Uint32Array(bodies.length * 2);
  let at = 0;
  bodies.forEach((body, i) => {
    const { written } = encoder.encodeInto(body, data.subarray(at));
    desc[2 * i] = at;
    desc[2 * i + 1] = written;
    at += written;
  });
  return hashLeaves(data, desc, bodies.length, hasher);
}

/**
 * A compact range extended by packed leaf hashes.
 *
 * @param range The range (not changed).
 * @param leaves Packed leaf hashes.
 * @param hasher Native or TS.
 * @returns The extended range.
 */
export function appendLeaves(
  range: CompactRange,
  leaves: Uint8Array,
  hasher: MerkleHasher = merkleHasher(),
): CompactRange {
  if (hasher === null) {
    const extended = range.clone();
    for (let at = 0; at < leaves.length; at += HASH_BYTES) {
      extended.append(leaves.subarray(at, at + HASH_BYTES));
    }
    return extended;
  }
  // The native side holds the range by level (bit k of the size: 2^k leaves), the range highest
  // first.
  const levels = new Uint8Array(64 * HASH_BYTES);
  const bits = (size: number) => setBits(size).reverse();
  range.hashes.forEach((hash, i) => levels.set(hash, bits(range.size)[i]! * HASH_BYTES));
  hasher.rangeAppend(levels, range.size, leaves);
  const size = range.size + leaves.length / HASH_BYTES;
  return new CompactRange(
    size,
    bits(size).map((k) => levels.slice(k * HASH_BYTES, (k + 1) * HASH_BYTES)),
  );
}

/**
 * MTH of one or more packed leaf hashes (RFC 9162 §2.1.1).
 *
 * @param leaves Packed leaf hashes.
 * @param hasher Native or TS.
 * @returns The root.
 */
export function subtreeRoot(leaves: Uint8Array, hasher: MerkleHasher = merkleHasher()): Uint8Array {
  if (hasher !== null) {
    const out = new Uint8Array(HASH_BYTES);
    hasher.subtreeRoot(leaves, out);
    return out;
  }
  const n = leaves.length / HASH_BYTES;
  if (n === 1) return leaves.slice(0, HASH_BYTES);
  let k = 1;
  while (k * 2 < n) k *= 2;
  const split = k * HASH_BYTES;
  return hashChildren(
    subtreeRoot(leaves.subarray(0, split), hasher),
    subtreeRoot(leaves.subarray(split), hasher),
  );
}

/** The set bits of `size`, lowest first. */
function setBits(size: number): number[] {
  const bits: number[] = [];
  for (let k = 0, s = size; s > 0; k++, s = Math.floor(s / 2)) if (s % 2 === 1) bits.push(k);
  return bits;
}
