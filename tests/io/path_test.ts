import assert from "node:assert/strict";
import { posix } from "node:path";
import fc from "fast-check";
import {
  basename,
  dirname,
  isAbsolute,
  join,
  normalize,
  relative,
  resolve,
  sep,
} from "../../lib/io/path.ts";

const SEED = 20261202;

/** Paths built from the pieces whose handling differs: roots, repeated and trailing slashes, dots. */
const path = fc.array(fc.constantFrom("", "/", "//", ".", "..", "a", "b.c", "x y", "..."), {
  maxLength: 8,
}).map((pieces) => pieces.join(""));
const segmentedPath = fc.array(fc.constantFrom("", ".", "..", "a", "b", "..."), { maxLength: 6 })
  .chain((segments) => fc.boolean().map((rooted) => (rooted ? "/" : "") + segments.join("/")));
const anyPath = fc.oneof(path, segmentedPath);

Deno.test("lib/io/path gives node:path's POSIX results on paths of every shape", () => {
  fc.assert(
    fc.property(anyPath, anyPath, anyPath, (a, b, c) => {
      assert.equal(normalize(a), posix.normalize(a), `normalize(${JSON.stringify(a)})`);
      assert.equal(dirname(a), posix.dirname(a), `dirname(${JSON.stringify(a)})`);
      assert.equal(basename(a), posix.basename(a), `basename(${JSON.stringify(a)})`);
      assert.equal(isAbsolute(a), posix.isAbsolute(a));
      assert.equal(join(a, b, c), posix.join(a, b, c), `join(${[a, b, c]})`);
      assert.equal(resolve(a, b, c), posix.resolve(a, b, c), `resolve(${[a, b, c]})`);
      assert.equal(relative(a, b), posix.relative(a, b), `relative(${[a, b]})`);
    }),
    { seed: SEED, numRuns: 5000 },
  );
});

Deno.test("lib/io/path handles empty arguments and the root as node:path does", () => {
  assert.equal(join(), posix.join());
  assert.equal(resolve(), posix.resolve());
  for (const p of ["", "/", "//", "///a", "a//", "/a//b"]) {
    assert.equal(dirname(p), posix.dirname(p), `dirname(${JSON.stringify(p)})`);
    assert.equal(basename(p), posix.basename(p), `basename(${JSON.stringify(p)})`);
  }
  assert.equal(sep, posix.sep);
});
