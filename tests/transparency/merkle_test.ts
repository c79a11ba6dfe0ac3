import assert from "node:assert/strict";
import fc from "fast-check";
import { Buffer } from "node:buffer";
import { CompactRange, EMPTY_ROOT, hashLeaf } from "../../lib/transparency/merkle.ts";
import { MemoryTree } from "../../lib/transparency/memory_tree.ts";
import { referenceRoot } from "../_reference/merkle.ts";

const SEED = 6962;
const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/transparency/rfc6962.json", import.meta.url)),
);
const hex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const inputs: Uint8Array[] = vectors.leaves.map(hex);

Deno.test("hashLeaf() matches the RFC 6962 leaf hashes of the test tree", () => {
  assert.deepEqual(inputs.map((input) => toHex(hashLeaf(input))), vectors.leaf_hashes);
});

Deno.test("CompactRange.root() matches the RFC 6962 roots of every prefix of the test tree", () => {
  const range = new CompactRange();
  assert.equal(toHex(range.root()), vectors.empty_root);
  assert.equal(toHex(EMPTY_ROOT), vectors.empty_root);
  inputs.forEach((input, i) => {
    range.append(hashLeaf(input));
    assert.equal(toHex(range.root()), vectors.roots[i], `size ${i + 1}`);
  });
});

Deno.test("CompactRange keeps one subtree root per set bit of the size", () => {
  const range = new CompactRange();
  for (const input of inputs.slice(0, 7)) range.append(hashLeaf(input));
  assert.deepEqual(range.hashes.map(toHex), vectors.compact_ranges["7"]);
  const restored = new CompactRange(6, vectors.compact_ranges["6"].map(hex));
  restored.append(hashLeaf(inputs[6]!));
  assert.equal(toHex(restored.root()), vectors.roots[6]);
});

Deno.test("CompactRange() refuses a hash count that does not match the size", () => {
  assert.throws(() => new CompactRange(6, [hex(vectors.roots[0])]), RangeError);
  assert.throws(() => new CompactRange(1, [new Uint8Array(31)]), RangeError);
  assert.throws(() => new CompactRange(-1), RangeError);
});

Deno.test("MemoryTree after a pruned prefix has the roots of the whole tree", () => {
  const leaves = inputs.map((input) => hashLeaf(input));
  for (let cut = 0; cut <= leaves.length; cut++) {
    const prefix = new CompactRange();
    for (const leaf of leaves.slice(0, cut)) prefix.append(leaf);
    const tree = new MemoryTree(leaves.slice(cut), prefix);
    for (let size = Math.max(cut, 1); size <= leaves.length; size++) {
      assert.equal(toHex(tree.root(size)), vectors.roots[size - 1], `cut ${cut} size ${size}`);
    }
  }
});

Deno.test("MemoryTree.subtree() refuses a node inside the pruned prefix", () => {
  const leaves = inputs.map((input) => hashLeaf(input));
  const prefix = new CompactRange();
  for (const leaf of leaves.slice(0, 4)) prefix.append(leaf);
  const tree = new MemoryTree(leaves.slice(4), prefix);
  assert.throws(() => tree.subtree(0, 2), /pruned/);
  assert.throws(() => tree.leaf(1), /holds leaves 4 to 7/);
});

Deno.test("CompactRange.root() equals the naive RFC root for random trees", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 70 }), (data) => {
      const range = new CompactRange();
      for (const input of data) range.append(hashLeaf(input));
      assert.deepEqual(range.root(), referenceRoot(data));
      assert.deepEqual(new MemoryTree(data.map((d) => hashLeaf(d))).root(), range.root());
    }),
    { seed: SEED, numRuns: 100 },
  );
});
