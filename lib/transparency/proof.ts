/**
 * Merkle inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4): generation over any
 * source of subtree hashes, and verification that needs only the proof, the sizes and the roots.
 *
 * Sizes and indexes are JavaScript numbers (safe integers), so halving is done with division,
 * never with 32-bit shifts.
 *
 * @see {@link https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3 | RFC 9162 §2.1.3}
 * @see {@link https://www.rfc-editor.org/rfc/rfc9162#section-2.1.4 | RFC 9162 §2.1.4}
 * @module
 */
import { HASH_BYTES, hashChildren, hashEquals } from "./merkle.ts";

/** A source of subtree hashes: MTH(D[lo:hi]) of RFC 9162 §2.1.1. */
export interface SubtreeSource {
  /**
   * The hash of leaves `[lo, hi)`.
   *
   * @param lo First leaf.
   * @param hi One past the last leaf.
   * @returns MTH(D[lo:hi]).
   */
  subtree(lo: number, hi: number): Uint8Array;
}

/** The largest power of two smaller than `n` (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The audit path of leaf `index` in the tree of the first `size` leaves, PATH(m, D[n]) of
 * RFC 9162 §2.1.3.1, nearest sibling first.
 *
 * @param source Subtree hashes of the tree.
 * @param index Leaf index (0-based).
 * @param size Tree size.
 * @returns The audit path.
 * @throws {RangeError} When `index` is not below `size`.
 *
 * @example Usage
 * ```ts
 * import { inclusionProof, verifyInclusion } from "./proof.ts";
 * import { hashLeaf } from "./merkle.ts";
 * import { MemoryTree } from "./memory_tree.ts";
 * import assert from "node:assert/strict";
 *
 * const tree = new MemoryTree(["a", "b", "c"].map((t) => hashLeaf(t)));
 * const path = inclusionProof(tree, 2, 3);
 * assert.ok(verifyInclusion(2, 3, hashLeaf("c"), path, tree.subtree(0, 3)));
 * ```
 */
export function inclusionProof(source: SubtreeSource, index: number, size: number): Uint8Array[] {
  if (!(index >= 0 && index < size)) {
    throw new RangeError(`Cannot prove leaf ${index}: the tree has ${size} leaves`);
  }
  const path: Uint8Array[] = [];
  let lo = 0;
  let hi = size;
  const siblings: Uint8Array[] = [];
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index - lo < k) {
      siblings.push(source.subtree(lo + k, hi));
      hi = lo + k;
    } else {
      siblings.push(source.subtree(lo, lo + k));
      lo += k;
    }
  }
  // The recursion appends on the way out: the deepest sibling comes first.
  for (let i = siblings.length - 1; i >= 0; i--) path.push(siblings[i]!);
  return path;
}

/**
 * The consistency proof between the trees of the first `size1` and `size2` leaves,
 * PROOF(m, D[n]) of RFC 9162 §2.1.4.1.
 *
 * @param source Subtree hashes of the larger tree.
 * @param size1 Size of the older tree.
 * @param size2 Size of the newer tree.
 * @returns The proof (empty when the sizes are equal or `size1` is 0).
 * @throws {RangeError} When `size1` exceeds `size2`.
 *
 * @example Usage
 * ```ts
 * import { consistencyProof, verifyConsistency } from "./proof.ts";
 * import { hashLeaf } from "./merkle.ts";
 * import { MemoryTree } from "./memory_tree.ts";
 * import assert from "node:assert/strict";
 *
 * const tree = new MemoryTree(["a", "b", "c"].map((t) => hashLeaf(t)));
 * const proof = consistencyProof(tree, 2, 3);
 * assert.ok(verifyConsistency(2, 3, tree.subtree(0, 2), tree.subtree(0, 3), proof));
 * ```
 */
export function consistencyProof(
  source: SubtreeSource,
  size1: number,
  size2: number,
): Uint8Array[] {
  if (!(size1 >= 0 && size1 <= size2)) {
    throw new RangeError(`Cannot prove consistency from size ${size1} to ${size2}`);
  }
  if (size1 === 0 || size1 === size2) return [];
  const reversed: Uint8Array[] = [];
  let m = size1;
  let lo = 0;
  let hi = size2;
  let whole = true;
  while (m !== hi - lo) {
    const k = splitPoint(hi - lo);
    if (m <= k) {
      reversed.push(source.subtree(lo + k, hi));
      hi = lo + k;
    } else {
      reversed.push(source.subtree(lo, lo + k));
      lo += k;
      m -= k;
      whole = false;
    }
  }
  if (!whole) reversed.push(source.subtree(lo, hi));
  return reversed.reverse();
}

function isHash(hash: Uint8Array): boolean {
  return hash instanceof Uint8Array && hash.length === HASH_BYTES;
}

/**
 * Verifies an inclusion proof (RFC 9162 §2.1.3.2).
 *
 * @param index Leaf index.
 * @param size Tree size.
 * @param leafHash The leaf's hash.
 * @param path The audit path.
 * @param root The tree's root.
 * @returns Whether the proof shows the leaf at `index` in the tree with that root.
 *
 * @example Usage
 * ```ts
 * import { verifyInclusion } from "./proof.ts";
 * import { hashLeaf } from "./merkle.ts";
 * import assert from "node:assert/strict";
 *
 * const leaf = hashLeaf("only");
 * assert.ok(verifyInclusion(0, 1, leaf, [], leaf));
 * assert.ok(!verifyInclusion(1, 1, leaf, [], leaf));
 * ```
 */
export function verifyInclusion(
  index: number,
  size: number,
  leafHash: Uint8Array,
  path: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  const computed = rootFromInclusionProof(index, size, leafHash, path);
  return computed !== undefined && isHash(root) && hashEquals(computed, root);
}

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1–5), or undefined when the
 * proof cannot be one for that index and size.
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leafHash: Uint8Array,
  path: readonly Uint8Array[],
): Uint8Array | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size)) return undefined;
  if (index < 0 || index >= size || !isHash(leafHash)) return undefined;
  const at: Position = { fn: index, sn: size - 1 };
  let r = leafHash;
  for (const p of path) {
    if (at.sn === 0 || !isHash(p)) return undefined;
    if (isRightEdge(at)) {
      r = hashChildren(p, r);
      skipRightEdge(at);
    } else {
      r = hashChildren(r, p);
    }
    climb(at);
  }
  return at.sn === 0 ? r : undefined;
}

/** `fn` and `sn` of RFC 9162's verification loops: a node's index and the last index on its level. */
interface Position {
  fn: number;
  sn: number;
}

/** "LSB(fn) is set, or fn is equal to sn": the proof element goes on the left. */
function isRightEdge(at: Position): boolean {
  return at.fn % 2 === 1 || at.fn === at.sn;
}

/** "If LSB(fn) is not set, right-shift fn and sn equally until either LSB(fn) is set or fn is 0". */
function skipRightEdge(at: Position): void {
  while (at.fn % 2 === 0 && at.fn !== 0) climb(at);
}

/** "Right-shift both fn and sn one time". */
function climb(at: Position): void {
  at.fn = Math.floor(at.fn / 2);
  at.sn = Math.floor(at.sn / 2);
}

/**
 * Verifies a consistency proof (RFC 9162 §2.1.4.2): that the tree of `size2` leaves with root
 * `root2` extends the tree of `size1` leaves with root `root1`. Equal sizes need equal roots
 * and an empty proof; a proof from the empty tree is refused (it proves nothing).
 *
 * @param size1 Older size.
 * @param size2 Newer size.
 * @param root1 Older root.
 * @param root2 Newer root.
 * @param proof The proof.
 * @returns Whether the proof holds.
 *
 * @example Usage
 * ```ts
 * import { verifyConsistency } from "./proof.ts";
 * import { hashLeaf } from "./merkle.ts";
 * import assert from "node:assert/strict";
 *
 * const root = hashLeaf("a");
 * assert.ok(verifyConsistency(1, 1, root, root, []));
 * assert.ok(!verifyConsistency(2, 1, root, root, []));
 * ```
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2)) return false;
  if (size1 < 0 || size2 < size1 || !isHash(root1) || !isHash(root2)) return false;
  if (size1 === size2) return proof.length === 0 && hashEquals(root1, root2);
  if (size1 === 0 || proof.length === 0 || !proof.every(isHash)) return false;
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  const at: Position = { fn: size1 - 1, sn: size2 - 1 };
  while (at.fn % 2 === 1) climb(at);
  let fr = path[0]!;
  let sr = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (at.sn === 0) return false;
    if (isRightEdge(at)) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      skipRightEdge(at);
    } else {
      sr = hashChildren(sr, c);
    }
    climb(at);
  }
  return at.sn === 0 && hashEquals(fr, root1) && hashEquals(sr, root2);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}
