import assert from "node:assert/strict";
import { blockRanges, checkBlockIds, validateBlockLayout } from "../../lib/sidecar/mod.ts";

const KIB = 1024;

Deno.test("validateBlockLayout() accepts vLLM's per-layer K and V tensors as 2 × layers regions", () => {
  const layers = 3;
  const blocks = 16;
  const tensor = blocks * KIB;
  const regions = Array.from({ length: 2 * layers }, (_, t) => ({
    offset: t * tensor,
    block_stride: KIB,
    block_bytes: KIB,
  }));
  const layout = validateBlockLayout(2 * layers * tensor, blocks, regions);
  assert.equal(layout.blockBytes, 2 * layers * KIB);
  const ranges = blockRanges(layout, [5]);
  assert.deepEqual(ranges.map((r) => r.offset), regions.map((r) => r.offset + 5 * KIB));
});

Deno.test("validateBlockLayout() accepts K and V interleaved inside one stride", () => {
  const regions = [
    { offset: 0, block_stride: 2 * KIB, block_bytes: KIB },
    { offset: KIB, block_stride: 2 * KIB, block_bytes: KIB },
  ];
  const layout = validateBlockLayout(8 * KIB, 4, regions);
  // Both halves of blocks 1 and 2 are contiguous: one merged range.
  assert.deepEqual(blockRanges(layout, [2, 1]), [{ offset: 2 * KIB, length: 4 * KIB }]);
});

Deno.test("validateBlockLayout() refuses a block that ends past the pool", () => {
  assert.throws(
    () => validateBlockLayout(4095, 4, [{ offset: 0, block_stride: KIB, block_bytes: KIB }]),
    /block 3 ends/,
  );
  assert.throws(
    () => validateBlockLayout(4 * KIB, 4, [{ offset: 1, block_stride: KIB, block_bytes: KIB }]),
    /past the pool/,
  );
});

Deno.test("validateBlockLayout() refuses sizes whose product overflows 2^53", () => {
  const huge = Number.MAX_SAFE_INTEGER;
  assert.throws(
    () => validateBlockLayout(huge, huge, [{ offset: 0, block_stride: huge, block_bytes: 1 }]),
    /ends past the pool/,
  );
  assert.throws(
    () => validateBlockLayout(2 ** 60, 2, [{ offset: 0, block_stride: 1, block_bytes: 1 }]),
    /Invalid bytes/,
  );
  assert.throws(
    () => validateBlockLayout(huge, 2, [{ offset: huge, block_stride: 1, block_bytes: 1 }]),
    /past the pool/,
  );
});

Deno.test("validateBlockLayout() refuses blocks that overlap inside or across regions", () => {
  assert.throws(
    () => validateBlockLayout(8 * KIB, 4, [{ offset: 0, block_stride: KIB, block_bytes: 2 * KIB }]),
    /would overlap/,
  );
  assert.throws(
    () =>
      validateBlockLayout(8 * KIB, 4, [
        { offset: 0, block_stride: KIB, block_bytes: KIB },
        { offset: 2 * KIB, block_stride: KIB, block_bytes: KIB },
      ]),
    /overlaps regions\[0\]/,
  );
  assert.throws(
    () =>
      validateBlockLayout(8 * KIB, 4, [
        { offset: 0, block_stride: 2 * KIB, block_bytes: KIB },
        { offset: 512, block_stride: 2 * KIB, block_bytes: KIB },
      ]),
    /overlaps/,
  );
});

Deno.test("validateBlockLayout() refuses malformed fields and empty layouts", () => {
  for (
    const regions of [
      [],
      "x",
      [null],
      [{ offset: -1, block_stride: 1, block_bytes: 1 }],
      [{ offset: 0, block_stride: 0, block_bytes: 0 }],
      [{ offset: 0.5, block_stride: 1, block_bytes: 1 }],
      [{ offset: "0", block_stride: 1, block_bytes: 1 }],
    ]
  ) {
    assert.throws(() => validateBlockLayout(64, 4, regions), RangeError, JSON.stringify(regions));
  }
  assert.throws(
    () => validateBlockLayout(64, 4, [{ offset: 0, block_stride: 1, block_bytes: 1 }], 0),
    /limit/,
  );
});

Deno.test("checkBlockIds() refuses ids out of range, fractional, duplicated or too many", () => {
  const layout = validateBlockLayout(64, 4, [{ offset: 0, block_stride: 16, block_bytes: 16 }]);
  assert.deepEqual(checkBlockIds(layout, [3, 0], 10), [3, 0]);
  for (const ids of [[4], [-1], [1.5], ["1"], [1, 1], [], "1"]) {
    assert.throws(() => checkBlockIds(layout, ids, 10), RangeError, JSON.stringify(ids));
  }
  assert.throws(() => checkBlockIds(layout, [0, 1], 1), /limit/);
});

Deno.test("blockRanges() of one block of a flat pool is that block's range", () => {
  const layout = validateBlockLayout(64 * KIB, 8, [
    { offset: 4 * KIB, block_stride: 6 * KIB, block_bytes: 5 * KIB },
  ]);
  assert.deepEqual(blockRanges(layout, [3]), [{ offset: 22 * KIB, length: 5 * KIB }]);
  assert.deepEqual(blockRanges(layout, [0]), [{ offset: 4 * KIB, length: 5 * KIB }]);
});
