/**
 * Block layouts as regions (DESIGN.md §7b): block `b` of a pool occupies one range per region,
 * `[offset + b × block_stride, offset + b × block_stride + block_bytes)`. A flat pool is one
 * region; vLLM's per-layer K and V tensors are 2 × layers regions. Every range is proven inside
 * the pool, and no two blocks share a byte, before kvh writes anything.
 *
 * @module
 */
import type { Region } from "./types.ts";

/** A layout that passed {@linkcode validateBlockLayout}. */
export interface BlockLayout {
  /** Bytes of the pool. */
  bytes: number;
  /** Number of blocks: ids are 0 … blocks − 1. */
  blocks: number;
  /** Regions, as given. */
  regions: readonly Region[];
  /** Bytes of one block across all regions. */
  blockBytes: number;
}

/** A byte range inside a pool. */
export interface ByteRange {
  /** First byte. */
  offset: number;
  /** Length in bytes. */
  length: number;
}

/** Thrown when a layout or a block id is not acceptable; the message says which and why. */
export class LayoutError extends RangeError {
  /**
   * Creates the error.
   *
   * @param message What is wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "LayoutError";
  }
}

function field(value: unknown, name: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new LayoutError(`Invalid ${name}: expected an integer of at least ${min}`);
  }
  return value;
}

/**
 * Checks a layout against the pool size: every field a safe integer, every range of every block
 * inside `[0, bytes)` (computed without overflow: the largest end is below 2^53), blocks of one
 * region never overlapping, and regions never sharing a byte across different blocks.
 *
 * @param bytes Bytes of the pool.
 * @param blocks Number of blocks.
 * @param regions The regions.
 * @param maxRegions Most regions accepted.
 * @returns The validated layout.
 * @throws {LayoutError} Naming the region and the rule it breaks.
 *
 * @example Usage
 * ```ts
 * import { validateBlockLayout } from "./block_layout.ts";
 * import assert from "node:assert/strict";
 *
 * // Two layers, K and V each: 4 regions of 8 blocks × 64 bytes in a 2 KiB pool.
 * const regions = [0, 512, 1024, 1536].map((offset) => ({ offset, block_stride: 64, block_bytes: 64 }));
 * const layout = validateBlockLayout(2048, 8, regions);
 * assert.equal(layout.blockBytes, 256);
 * assert.throws(() => validateBlockLayout(2000, 8, regions));
 * ```
 */
export function validateBlockLayout(
  bytes: unknown,
  blocks: unknown,
  regions: unknown,
  maxRegions = 1024,
): BlockLayout {
  const size = field(bytes, "bytes", 1);
  const count = field(blocks, "blocks", 1);
  if (!Array.isArray(regions) || regions.length === 0) {
    throw new LayoutError("Invalid regions: expected a non-empty array");
  }
  if (regions.length > maxRegions) {
    throw new LayoutError(`Invalid regions: ${regions.length} exceed the limit of ${maxRegions}`);
  }
  const checked: Region[] = [];
  let blockBytes = 0;
  for (const [i, region] of regions.entries()) {
    if (typeof region !== "object" || region === null) {
      throw new LayoutError(`Invalid regions[${i}]: expected an object`);
    }
    const r = region as Record<string, unknown>;
    const offset = field(r.offset, `regions[${i}].offset`, 0);
    const stride = field(r.block_stride, `regions[${i}].block_stride`, 1);
    const length = field(r.block_bytes, `regions[${i}].block_bytes`, 1);
    if (length > stride) {
      throw new LayoutError(
        `Invalid regions[${i}]: block_bytes ${length} exceed block_stride ${stride}, blocks would overlap`,
      );
    }
    // Each term is at most 2^53 and checked before the next is added, so no step loses
    // precision: (count − 1) × stride is compared through division first.
    if (count - 1 > Math.floor((size - length) / stride)) {
      throw new LayoutError(`Invalid regions[${i}]: block ${count - 1} ends past the pool`);
    }
    const end = offset + (count - 1) * stride + length;
    if (offset > size || end > size) {
      throw new LayoutError(
        `Invalid regions[${i}]: block ${count - 1} ends at ${end}, past the pool of ${size} bytes`,
      );
    }
    checked.push({ offset, block_stride: stride, block_bytes: length });
    blockBytes += length;
  }
  checkDisjoint(checked, count);
  return { bytes: size, blocks: count, regions: checked, blockBytes };
}

// Two regions may interleave (K and V of one block side by side with one stride) but never put
// two different blocks, or one block twice, on the same byte.
function checkDisjoint(regions: Region[], blocks: number): void {
  for (let i = 0; i < regions.length; i++) {
    const a = regions[i]!;
    const aEnd = a.offset + (blocks - 1) * a.block_stride + a.block_bytes;
    for (let j = i + 1; j < regions.length; j++) {
      const b = regions[j]!;
      const bEnd = b.offset + (blocks - 1) * b.block_stride + b.block_bytes;
      if (aEnd <= b.offset || bEnd <= a.offset) continue;
      if (a.block_stride === b.block_stride) {
        const stride = a.block_stride;
        const shift = (((b.offset - a.offset) % stride) + stride) % stride;
        if (shift >= a.block_bytes && stride - shift >= b.block_bytes) continue;
      }
      throw new LayoutError(`Invalid regions[${j}]: it overlaps regions[${i}]`);
    }
  }
}

/**
 * Checks block ids (integers in `[0, blocks)`, no duplicates) and returns them.
 *
 * @param layout The pool's layout.
 * @param ids The ids as received.
 * @param maxIds Most ids accepted.
 * @returns The ids.
 * @throws {LayoutError} On the first bad id.
 */
export function checkBlockIds(layout: BlockLayout, ids: unknown, maxIds: number): number[] {
  if (!Array.isArray(ids) || ids.length === 0) {
    throw new LayoutError("Invalid blocks: expected a non-empty array of block ids");
  }
  if (ids.length > maxIds) {
    throw new LayoutError(`Invalid blocks: ${ids.length} ids exceed the limit of ${maxIds}`);
  }
  // A single id (the common request of a block-per-request engine) needs no set of those seen.
  const seen = ids.length > 1 ? new Set<number>() : undefined;
  for (const id of ids) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= layout.blocks) {
      throw new LayoutError(
        `Invalid block id ${JSON.stringify(id)}: expected an integer in [0, ${layout.blocks})`,
      );
    }
    if (seen?.has(id)) throw new LayoutError(`Invalid blocks: block ${id} is listed twice`);
    seen?.add(id);
  }
  return ids as number[];
}

/**
 * The byte ranges of some blocks, one per region and block, sorted by offset with adjacent
 * ranges merged (fewer, larger writes).
 *
 * @param layout The pool's layout.
 * @param ids Block ids already checked with {@linkcode checkBlockIds}.
 * @returns The ranges.
 */
export function blockRanges(layout: BlockLayout, ids: readonly number[]): ByteRange[] {
  if (layout.regions.length === 1 && ids.length === 1) {
    // The release of one block of a flat pool, the most frequent: one range, in an array of
    // one (a first push onto an empty array reserves room for 16).
    const region = layout.regions[0]!;
    return [{ offset: region.offset + ids[0]! * region.block_stride, length: region.block_bytes }];
  }
  const ranges: ByteRange[] = [];
  for (const region of layout.regions) {
    for (const id of ids) {
      ranges.push({ offset: region.offset + id * region.block_stride, length: region.block_bytes });
    }
  }
  // Merged in place (the ranges are this call's own): a release of one block allocates nothing
  // more than its ranges.
  if (ranges.length > 1) ranges.sort(byOffset);
  let kept = 0;
  for (const range of ranges) {
    const last = kept > 0 ? ranges[kept - 1]! : undefined;
    if (last !== undefined && last.offset + last.length === range.offset) {
      last.length += range.length;
    } else ranges[kept++] = range;
  }
  ranges.length = kept;
  return ranges;
}

function byOffset(x: ByteRange, y: ByteRange): number {
  return x.offset - y.offset;
}
