import assert from "node:assert/strict";
import fc from "fast-check";
import {
  appendLeaves,
  hashBodies,
  merkleHasher,
  subtreeRoot,
} from "../../lib/transparency/batch_hash.ts";
import { CompactRange, hashLeaf } from "../../lib/transparency/merkle.ts";
import { referenceRoot } from "../_reference/merkle.ts";

const SEED = 6962;
const native = merkleHasher();

Deno.test("batch Merkle hashing: the native library loads where it is built", () => {
  // ffi/native/build.sh builds it wherever OpenSSL's headers exist, CI included.
  assert.notEqual(native, null);
});

Deno.test("batch Merkle hashing: native and TS give the RFC 6962 leaves, ranges and roots", () => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ unit: "grapheme", maxLength: 40 }), { minLength: 1, maxLength: 70 }),
      fc.nat(69),
      (bodies, cut) => {
        const start = Math.min(cut, bodies.length - 1);
        const inputs = bodies.map((body) => new TextEncoder().encode(body));
        const leaves = inputs.map((input) => hashLeaf(input));
        const root = referenceRoot(inputs);
        const packed = new Uint8Array(leaves.length * 32);
        leaves.forEach((leaf, i) => packed.set(leaf, i * 32));
        const prefix = new CompactRange();
        leaves.slice(0, start).forEach((leaf) => prefix.append(leaf));
        for (const hasher of [native, null]) {
          assert.deepEqual(hashBodies(bodies, hasher), packed);
          const range = appendLeaves(prefix, packed.subarray(start * 32), hasher);
          assert.equal(range.size, leaves.length);
          assert.deepEqual(range.root(), root);
          assert.deepEqual(subtreeRoot(packed, hasher), root);
        }
      },
    ),
    { seed: SEED, numRuns: 200 },
  );
});
