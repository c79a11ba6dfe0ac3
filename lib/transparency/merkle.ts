/**
 * RFC 6962 Merkle tree hashing (RFC 9162 §2.1.1) and the compact range of a tree: the roots of
 * the perfect subtrees covering leaves `[0, size)`, at most one per bit of `size`, which is all
 * an appender needs to keep (O(log n) hashes) to compute every root and extend the tree.
 *
 * Pure: no I/O. Hashes are 32-byte `Uint8Array`s.
 *
 * @see {@link https://www.rfc-editor.org/rfc/rfc6962#section-2.1 | RFC 6962 §2.1}
 * @see {@link https://www.rfc-editor.org/rfc/rfc9162#section-2.1.1 | RFC 9162 §2.1.1}
 * @module
 */
import type { Hash } from "node:crypto";
import { nodeCrypto } from "../forensic/digest.ts";

/** Domain-separation prefix of a leaf hash (RFC 6962 §2.1). */
export const LEAF_PREFIX = 0x00;
/** Domain-separation prefix of an interior node hash (RFC 6962 §2.1). */
export const NODE_PREFIX = 0x01;
/** Length of a SHA-256 hash in bytes. */
export const HASH_BYTES = 32;

// Copying a hash that has already taken the prefix is cheaper per call than createHash and one
// update more (see sha256Hex in lib/forensic/digest.ts). Made on first use: node:crypto is not
// loaded by a process that never hashes a tree.
let leafBase: Hash | undefined;
let nodeBase: Hash | undefined;

/**
 * The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
 *
 * @example Usage
 * ```ts
 * import { EMPTY_ROOT } from "./merkle.ts";
 * import { createHash } from "node:crypto";
 * import assert from "node:assert/strict";
 *
 * assert.equal(EMPTY_ROOT.toHex(), createHash("sha256").digest("hex"));
 * ```
 */
export const EMPTY_ROOT: Uint8Array = Uint8Array.fromHex(
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
);

/**
 * Hashes one leaf: SHA-256(0x00 ‖ data).
 *
 * @param data The leaf's bytes (for kvh: the canonical body whose SHA-256 is the record's `hash`).
 * @returns The 32-byte leaf hash.
 *
 * @example Usage
 * ```ts
 * import { hashLeaf } from "./merkle.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(hashLeaf(new Uint8Array()).length, 32);
 * ```
 */
export function hashLeaf(data: Uint8Array | string): Uint8Array {
  leafBase ??= nodeCrypto().createHash("sha256").update(new Uint8Array([LEAF_PREFIX]));
  return new Uint8Array(leafBase.copy().update(data).digest());
}

/**
 * Hashes an interior node: SHA-256(0x01 ‖ left ‖ right).
 *
 * @param left Hash of the left subtree.
 * @param right Hash of the right subtree.
 * @returns The 32-byte node hash.
 *
 * @example Usage
 * ```ts
 * import { hashChildren, hashLeaf } from "./merkle.ts";
 * import assert from "node:assert/strict";
 *
 * const leaf = hashLeaf("a");
 * assert.notDeepEqual(hashChildren(leaf, leaf), leaf);
 * ```
 */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  nodeBase ??= nodeCrypto().createHash("sha256").update(new Uint8Array([NODE_PREFIX]));
  return new Uint8Array(nodeBase.copy().update(left).update(right).digest());
}

/**
 * The compact range `[0, size)` of a Merkle tree: for each set bit of `size`, from the highest,
 * the root of the perfect subtree of that many leaves. Appending a leaf merges equal-sized
 * subtrees, as binary addition carries.
 *
 * @example Usage
 * ```ts
 * import { CompactRange, hashLeaf } from "./merkle.ts";
 * import assert from "node:assert/strict";
 *
 * const range = new CompactRange();
 * for (const text of ["a", "b", "c"]) range.append(hashLeaf(text));
 * assert.equal(range.size, 3);
 * assert.equal(range.hashes.length, 2); // 3 = 2 + 1
 * assert.equal(range.root().length, 32);
 * ```
 */
export class CompactRange {
  #size: number;
  #hashes: Uint8Array[];

  /**
   * Creates a range, empty or from a stored `size` and its subtree roots.
   *
   * @param size Number of leaves covered.
   * @param hashes One root per set bit of `size`, highest first.
   * @throws {RangeError} When the number of hashes does not match `size`.
   */
  constructor(size = 0, hashes: readonly Uint8Array[] = []) {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(`Invalid compact range: size ${size} is not a non-negative integer`);
    }
    if (hashes.length !== popCount(size) || hashes.some((h) => h.length !== HASH_BYTES)) {
      throw new RangeError(
        `Invalid compact range: size ${size} needs ${popCount(size)} hashes of 32 bytes`,
      );
    }
    this.#size = size;
    this.#hashes = hashes.slice();
  }

  /** Number of leaves covered. */
  get size(): number {
    return this.#size;
  }

  /** The subtree roots, highest first (a copy). */
  get hashes(): Uint8Array[] {
    return this.#hashes.slice();
  }

  /**
   * Appends one leaf hash.
   *
   * @param leafHash The leaf's hash ({@linkcode hashLeaf}).
   */
  append(leafHash: Uint8Array): void {
    let hash = leafHash;
    // Each trailing 1 bit of the old size is a subtree of equal height to merge with.
    for (let size = this.#size; size % 2 === 1; size = Math.floor(size / 2)) {
      hash = hashChildren(this.#hashes.pop()!, hash);
    }
    this.#hashes.push(hash);
    this.#size++;
  }

  /**
   * The tree's root (RFC 9162 §2.1.1): the subtree roots folded from the smallest.
   *
   * @returns The root; {@linkcode EMPTY_ROOT} for an empty tree.
   */
  root(): Uint8Array {
    const hashes = this.#hashes;
    if (hashes.length === 0) return EMPTY_ROOT;
    let root = hashes[hashes.length - 1]!;
    for (let i = hashes.length - 2; i >= 0; i--) root = hashChildren(hashes[i]!, root);
    return root;
  }

  /**
   * An independent copy.
   *
   * @returns The copy.
   */
  clone(): CompactRange {
    return new CompactRange(this.#size, this.#hashes);
  }
}

/**
 * The sizes of the perfect subtrees a compact range of `size` leaves holds, highest first.
 *
 * @param size Number of leaves.
 * @returns One power of two per set bit of `size`.
 */
export function subtreeSizes(size: number): number[] {
  const sizes: number[] = [];
  for (let bit = 2 ** Math.floor(Math.log2(Math.max(size, 1))); bit >= 1; bit /= 2) {
    if (Math.floor(size / bit) % 2 === 1) sizes.push(bit);
  }
  return sizes;
}

function popCount(size: number): number {
  return subtreeSizes(size).length;
}

/**
 * Compares two hashes in constant time (for equal lengths).
 *
 * @param a A hash.
 * @param b Another hash.
 * @returns Whether they are equal.
 */
export function hashEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
