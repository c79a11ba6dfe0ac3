/**
 * A Merkle tree held as its leaf hashes, optionally after a pruned prefix known only by its
 * compact range: enough to compute any root and every proof that does not need a node inside
 * the pruned prefix.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import { type MerkleHasher, merkleHasher, subtreeRoot } from "./batch_hash.ts";
import { CompactRange, EMPTY_ROOT, HASH_BYTES, hashChildren, subtreeSizes } from "./merkle.ts";
import { splitPoint, type SubtreeSource } from "./proof.ts";

/** Subtrees up to this many leaves are hashed in one call rather than kept. */
const MEMO_WIDTH = 4096;

/**
 * Leaf hashes packed in one buffer (32 bytes each), after an optional pruned prefix.
 *
 * @example Usage
 * ```ts
 * import { MemoryTree } from "./memory_tree.ts";
 * import { CompactRange, hashLeaf } from "./merkle.ts";
 * import assert from "node:assert/strict";
 *
 * const leaves = ["a", "b", "c", "d"].map((t) => hashLeaf(t));
 * const whole = new MemoryTree(leaves);
 * const prefix = new CompactRange();
 * prefix.append(leaves[0]!);
 * prefix.append(leaves[1]!);
 * const pruned = new MemoryTree(leaves.slice(2), prefix);
 * assert.deepEqual(pruned.root(), whole.root());
 * ```
 */
export class MemoryTree implements SubtreeSource {
  #prefix: CompactRange;
  /** Start and end of each prefix node, with its hash. */
  #nodes: { lo: number; hi: number; hash: Uint8Array }[] = [];
  #leaves: Uint8Array = new Uint8Array(1024 * HASH_BYTES);
  #count = 0;
  #hasher: MerkleHasher;
  /** Hashes of subtrees wider than {@linkcode MEMO_WIDTH}, by `lo:hi` (leaves never change). */
  #memo = new Map<string, Uint8Array>();

  /**
   * Creates a tree.
   *
   * @param leaves Leaf hashes after the prefix.
   * @param prefix Compact range of the pruned leaves before them.
   * @param hasher Where subtrees are hashed (native when it loads, by default).
   */
  constructor(
    leaves: Iterable<Uint8Array> = [],
    prefix: CompactRange = new CompactRange(),
    hasher: MerkleHasher = merkleHasher(),
  ) {
    this.#hasher = hasher;
    this.#prefix = prefix.clone();
    let lo = 0;
    const hashes = prefix.hashes;
    subtreeSizes(prefix.size).forEach((width, i) => {
      this.#nodes.push({ lo, hi: lo + width, hash: hashes[i]! });
      lo += width;
    });
    for (const leaf of leaves) this.push(leaf);
  }

  /** Number of leaves, the pruned prefix included. */
  get size(): number {
    return this.#prefix.size + this.#count;
  }

  /** Number of leaves in the pruned prefix. */
  get prunedSize(): number {
    return this.#prefix.size;
  }

  /**
   * Appends one leaf hash.
   *
   * @param leafHash 32 bytes.
   */
  push(leafHash: Uint8Array): void {
    if (leafHash.length !== HASH_BYTES) {
      throw new RangeError("Invalid leaf hash: expected 32 bytes");
    }
    this.pushAll(leafHash);
  }

  /**
   * Appends packed leaf hashes.
   *
   * @param leafHashes 32 bytes each.
   */
  pushAll(leafHashes: Uint8Array): void {
    if (leafHashes.length % HASH_BYTES !== 0) {
      throw new RangeError("Invalid leaf hashes: expected whole 32-byte hashes");
    }
    this.pushInto(leafHashes.length / HASH_BYTES, (view) => view.set(leafHashes));
  }

  /**
   * Appends `count` leaf hashes written in place, without a copy: a reader hashes straight into
   * the tree.
   *
   * @param count Leaves to append.
   * @param write Fills the view it is given (`count` × 32 bytes) with the leaf hashes.
   */
  pushInto(count: number, write: (view: Uint8Array) => void): void {
    const at = this.#count * HASH_BYTES;
    const bytes = count * HASH_BYTES;
    if (at + bytes > this.#leaves.length) this.#grow(Math.max(this.#leaves.length * 2, at + bytes));
    write(this.#leaves.subarray(at, at + bytes));
    this.#count += count;
  }

  /**
   * Makes room for `count` more leaves at once. Growing step by step touches twice the memory
   * the leaves need, and fresh pages cost a fault each: a reader that can estimate how many
   * leaves it will add says so first.
   *
   * @param count Leaves about to be appended.
   */
  reserve(count: number): void {
    const bytes = (this.#count + count) * HASH_BYTES;
    if (bytes > this.#leaves.length) this.#grow(bytes);
  }

  #grow(bytes: number): void {
    const grown = new Uint8Array(bytes);
    grown.set(this.#leaves.subarray(0, this.#count * HASH_BYTES));
    this.#leaves = grown;
  }

  /**
   * The same leaves placed after a pruned prefix (the leaves are shared, not copied): lets a
   * reader collect leaves before it learns, further on in the log, the compact range they follow.
   *
   * @param prefix Compact range of the pruned leaves before this tree's leaves.
   * @returns The new tree.
   */
  withPrefix(prefix: CompactRange): MemoryTree {
    if (this.#prefix.size !== 0) throw new RangeError("Cannot add a prefix to a pruned tree");
    const tree = new MemoryTree([], prefix, this.#hasher);
    tree.#leaves = this.#leaves;
    tree.#count = this.#count;
    return tree;
  }

  /**
   * The hash of leaf `index`.
   *
   * @param index Leaf index, not in the pruned prefix.
   * @returns Its hash (a copy).
   */
  leaf(index: number): Uint8Array {
    const offset = index - this.#prefix.size;
    if (!(offset >= 0 && offset < this.#count)) {
      throw new KvhError(
        "proof_unavailable",
        `Cannot read leaf ${index}: the tree holds leaves ${this.#prefix.size} to ${this.size - 1}`,
      );
    }
    return this.#leaves.slice(offset * HASH_BYTES, (offset + 1) * HASH_BYTES);
  }

  /**
   * The root of the first `size` leaves.
   *
   * @param size Tree size.
   * @returns Its root.
   */
  root(size: number = this.size): Uint8Array {
    return size === 0 ? EMPTY_ROOT : this.subtree(0, size);
  }

  /**
   * MTH(D[lo:hi]) (RFC 9162 §2.1.1).
   *
   * @param lo First leaf.
   * @param hi One past the last leaf.
   * @returns The subtree hash.
   * @throws {KvhError} `proof_unavailable` when it needs leaves that were pruned.
   */
  subtree(lo: number, hi: number): Uint8Array {
    if (!(lo >= 0 && lo < hi && hi <= this.size)) {
      throw new RangeError(`Cannot hash leaves ${lo} to ${hi}: the tree has ${this.size} leaves`);
    }
    const pruned = this.#prefix.size;
    if (lo < pruned) {
      const node = this.#nodes.find((n) => n.lo === lo && n.hi === hi);
      if (node !== undefined) return node.hash;
      if (this.#nodes.some((n) => n.lo <= lo && hi <= n.hi)) {
        throw new KvhError(
          "proof_unavailable",
          `Cannot hash leaves ${lo} to ${hi}: they were pruned (only their compact range is kept)`,
        );
      }
    } else {
      const at = (lo - pruned) * HASH_BYTES;
      // A view, not a copy: hashChildren only reads it.
      if (hi - lo === 1) return this.#leaves.subarray(at, at + HASH_BYTES);
      if (hi - lo <= MEMO_WIDTH) {
        return subtreeRoot(this.#leaves.subarray(at, (hi - pruned) * HASH_BYTES), this.#hasher);
      }
      // A proof's path is made of nodes of the root's own recursion: kept, a proof after the
      // root check (what `verify --prove` does) re-hashes only the narrow ones, not the log.
      const key = `${lo}:${hi}`;
      let hash = this.#memo.get(key);
      if (hash === undefined) {
        const k = splitPoint(hi - lo);
        hash = hashChildren(this.subtree(lo, lo + k), this.subtree(lo + k, hi));
        this.#memo.set(key, hash);
      }
      return hash;
    }
    const k = splitPoint(hi - lo);
    return hashChildren(this.subtree(lo, lo + k), this.subtree(lo + k, hi));
  }

  /**
   * The compact range of the first `size` leaves (at least the pruned prefix).
   *
   * @param size Number of leaves.
   * @returns The range.
   */
  compactRange(size: number = this.size): CompactRange {
    let lo = 0;
    const hashes = subtreeSizes(size).map((width) => {
      const hash = this.subtree(lo, lo + width);
      lo += width;
      return hash;
    });
    return new CompactRange(size, hashes);
  }
}
