import assert from "node:assert/strict";
import fc from "fast-check";
import { Buffer } from "node:buffer";
import { CompactRange, EMPTY_ROOT, hashLeaf } from "../../lib/transparency/merkle.ts";
import { MemoryTree } from "../../lib/transparency/memory_tree.ts";
import {
  consistencyProof,
  inclusionProof,
  verifyConsistency,
  verifyInclusion,
} from "../../lib/transparency/proof.ts";

const SEED = 9162;
const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/transparency/rfc6962.json", import.meta.url)),
);
const hex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const leaves: Uint8Array[] = vectors.leaves.map((h: string) => hashLeaf(hex(h)));
const roots: Uint8Array[] = vectors.roots.map(hex);
const tree = new MemoryTree(leaves);
const SOME_HASH = hex("abacaba000000000000000000000000000000000000000000060061e00123456");

function flip(proof: Uint8Array[], i: number, bit: number): Uint8Array[] {
  const copy = proof.map((p) => p.slice());
  copy[i]![0]! ^= bit;
  return copy;
}

interface InclusionCase {
  index: number;
  size: number;
  path: string[];
}

for (const c of vectors.inclusion as InclusionCase[]) {
  const path = c.path.map(hex);
  const root = roots[c.size - 1]!;
  const leaf = leaves[c.index]!;
  Deno.test(`inclusionProof() gives the RFC 6962 path of leaf ${c.index} in size ${c.size}`, () => {
    assert.deepEqual(inclusionProof(tree, c.index, c.size), path);
    assert.ok(verifyInclusion(c.index, c.size, leaf, path, root));
  });
  Deno.test(`verifyInclusion() refuses every mutation of leaf ${c.index} in size ${c.size}`, () => {
    const wrong: [string, number, number, Uint8Array, Uint8Array[], Uint8Array][] = [
      ["index - 1", c.index - 1, c.size, leaf, path, root],
      ["index + 1", c.index + 1, c.size, leaf, path, root],
      ["index ^ 2", c.index ^ 2, c.size, leaf, path, root],
      ["size * 2", c.index, c.size * 2, leaf, path, root],
      ["size / 2", c.index, Math.floor(c.size / 2), leaf, path, root],
      ["wrong leaf", c.index, c.size, SOME_HASH, path, root],
      ["empty root", c.index, c.size, leaf, path, EMPTY_ROOT],
      ["random root", c.index, c.size, leaf, path, SOME_HASH],
      ["trailing garbage", c.index, c.size, leaf, [...path, new Uint8Array()], root],
      ["trailing root", c.index, c.size, leaf, [...path, root], root],
      ["preceding garbage", c.index, c.size, leaf, [new Uint8Array(), ...path], root],
      ["preceding root", c.index, c.size, leaf, [root, ...path], root],
    ];
    path.forEach((_, i) => {
      wrong.push([`flipped bit 3 of path[${i}]`, c.index, c.size, leaf, flip(path, i, 8), root]);
    });
    if (path.length > 0) {
      wrong.push(["removed element", c.index, c.size, leaf, path.slice(0, -1), root]);
    }
    if (path.length > 1) {
      wrong.push(["inserted element", c.index, c.size, leaf, [
        path[0]!,
        SOME_HASH,
        ...path.slice(1),
      ], root]);
    }
    for (const [desc, index, size, leafHash, proof, r] of wrong) {
      assert.equal(verifyInclusion(index, size, leafHash, proof, r), false, desc);
    }
  });
}

Deno.test("verifyInclusion() refuses an empty tree, an index past the size and bad hash sizes", () => {
  const leaf = hashLeaf("data");
  assert.ok(verifyInclusion(0, 1, leaf, [], leaf));
  for (const [index, size] of [[0, 0], [1, 0], [2, 1]]) {
    assert.equal(verifyInclusion(index!, size!, SOME_HASH, [], EMPTY_ROOT), false);
  }
  assert.equal(verifyInclusion(0, 1, new Uint8Array(), [], leaf), false);
  assert.equal(verifyInclusion(0, 1, leaf, [], new Uint8Array()), false);
});

interface ConsistencyCase {
  size1: number;
  size2: number;
  proof: string[];
}

for (const c of vectors.consistency as ConsistencyCase[]) {
  const proof = c.proof.map(hex);
  const root1 = roots[c.size1 - 1]!;
  const root2 = roots[c.size2 - 1]!;
  Deno.test(`consistencyProof() gives the RFC 6962 proof from ${c.size1} to ${c.size2}`, () => {
    assert.deepEqual(consistencyProof(tree, c.size1, c.size2), proof);
    assert.ok(verifyConsistency(c.size1, c.size2, root1, root2, proof));
  });
  if (proof.length === 0) continue;
  Deno.test(`verifyConsistency() refuses every mutation from ${c.size1} to ${c.size2}`, () => {
    const wrong: [string, number, number, Uint8Array, Uint8Array, Uint8Array[]][] = [
      ["size1 - 1", c.size1 - 1, c.size2, root1, root2, proof],
      ["size1 + 1", c.size1 + 1, c.size2, root1, root2, proof],
      ["size1 ^ 2", c.size1 ^ 2, c.size2, root1, root2, proof],
      ["size2 * 2", c.size1, c.size2 * 2, root1, root2, proof],
      ["size2 / 2", c.size1, Math.floor(c.size2 / 2), root1, root2, proof],
      ["wrong root1", c.size1, c.size2, SOME_HASH, root2, proof],
      ["wrong root2", c.size1, c.size2, root1, SOME_HASH, proof],
      ["swapped roots", c.size1, c.size2, root2, root1, proof],
      ["empty proof", c.size1, c.size2, root1, root2, []],
      ["trailing garbage", c.size1, c.size2, root1, root2, [...proof, new Uint8Array()]],
      ["trailing root1", c.size1, c.size2, root1, root2, [...proof, root1]],
      ["trailing root2", c.size1, c.size2, root1, root2, [...proof, root2]],
      ["preceding garbage", c.size1, c.size2, root1, root2, [new Uint8Array(), ...proof]],
      ["preceding root1", c.size1, c.size2, root1, root2, [root1, ...proof]],
      ["preceding root2", c.size1, c.size2, root1, root2, [root2, ...proof]],
      ["preceding proof[0]", c.size1, c.size2, root1, root2, [proof[0]!, ...proof]],
      ["truncated proof", c.size1, c.size2, root1, root2, proof.slice(0, -1)],
    ];
    proof.forEach((_, i) => {
      wrong.push([
        `flipped bit 4 of proof[${i}]`,
        c.size1,
        c.size2,
        root1,
        root2,
        flip(proof, i, 16),
      ]);
    });
    for (const [desc, size1, size2, r1, r2, p] of wrong) {
      assert.equal(verifyConsistency(size1, size2, r1, r2, p), false, desc);
    }
  });
}

Deno.test("verifyConsistency() handles equal, empty and backwards sizes as RFC 9162 implies", () => {
  const a = roots[0]!;
  const b = roots[1]!;
  assert.ok(verifyConsistency(0, 0, a, a, []));
  assert.ok(verifyConsistency(1, 1, a, a, []));
  assert.equal(verifyConsistency(1, 1, a, b, []), false);
  assert.equal(verifyConsistency(1, 1, a, a, [EMPTY_ROOT]), false);
  assert.equal(verifyConsistency(0, 1, EMPTY_ROOT, a, [EMPTY_ROOT]), false);
  assert.equal(verifyConsistency(2, 1, a, b, []), false);
  assert.equal(verifyConsistency(1, 2, a, b, []), false);
});

Deno.test("consistency proofs verify for every prefix of random trees and fail otherwise", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 4 }), { minLength: 2, maxLength: 80 }),
      fc.nat(),
      fc.nat(),
      fc.nat(),
      (data, a, b, cut) => {
        const hashes = data.map((d) => hashLeaf(d));
        const n = hashes.length;
        const size2 = 1 + (a % n);
        const size1 = 1 + (b % size2);
        // The same leaves held after a pruned prefix give the same proofs.
        const pruneAt = cut % (size1 + 1);
        const prefix = new CompactRange();
        for (const h of hashes.slice(0, pruneAt)) prefix.append(h);
        const whole = new MemoryTree(hashes);
        const pruned = new MemoryTree(hashes.slice(pruneAt), prefix);
        const proof = consistencyProof(pruned, size1, size2);
        assert.deepEqual(proof, consistencyProof(whole, size1, size2));
        const root1 = whole.root(size1);
        const root2 = whole.root(size2);
        assert.ok(verifyConsistency(size1, size2, root1, root2, proof));
        // A different history of size1 leaves (one leaf changed) is not a prefix.
        const forked = hashes.slice(0, size1);
        const changed = (a + b) % size1;
        forked[changed] = hashLeaf(new Uint8Array([...data[changed]!, 0xff]));
        const forkRoot = new MemoryTree(forked).root();
        assert.equal(
          verifyConsistency(size1, size2, forkRoot, root2, proof),
          size1 === size2 && false,
        );
        for (let index = pruneAt; index < size2; index += 1 + (b % 7)) {
          assert.ok(
            verifyInclusion(
              index,
              size2,
              hashes[index]!,
              inclusionProof(pruned, index, size2),
              root2,
            ),
          );
        }
      },
    ),
    { seed: SEED, numRuns: 200 },
  );
});
