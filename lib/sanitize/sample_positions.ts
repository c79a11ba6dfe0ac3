/**
 * The byte positions `sample` verification reads: one function for every backend. The CPU and
 * WebGPU backends call it (WebGPU uploads its result); the CUDA kernel computes the same
 * positions in C (`sample_position` in ffi/cuda/kvh_cuda.cu, checked against this one through
 * its host-callable `kvh_sample_positions` by tests/sanitize/sample_positions_test.ts).
 *
 * @module
 */

/** Default number of sampled positions in `sample` mode (types.ts). */
export const DEFAULT_SAMPLES = 4096;

// SplitMix32-style mixer: the same (seed, index) always gives the same position, and
// neighbouring seeds give unrelated positions.
function mix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Positions read by `sample` verification of a buffer of `byteLength` bytes: one position in
 * each of `samples` equal strata, chosen from `seed`, so the samples are distinct, cover the
 * whole buffer and are reproducible for a given handle. With `samples ≥ byteLength` every
 * position is returned. The seed counts modulo 2^32; the CUDA kernel gives the same positions
 * (tested for buffers up to 1 TiB).
 *
 * @param byteLength Size of the buffer in bytes.
 * @param options Number of samples and seed.
 * @returns Ascending, distinct byte positions.
 *
 * @example Usage
 * ```ts
 * import { samplePositions } from "./sample_positions.ts";
 * import assert from "node:assert/strict";
 *
 * const positions = samplePositions(1024, { samples: 8, seed: 42 });
 * assert.equal(positions.length, 8);
 * assert.deepEqual(positions, samplePositions(1024, { samples: 8, seed: 42 }));
 * ```
 */
export function samplePositions(
  byteLength: number,
  options: { samples?: number; seed?: number } = {},
): number[] {
  const { samples = DEFAULT_SAMPLES, seed = 0 } = options;
  if (!Number.isInteger(samples) || samples < 0) {
    throw new RangeError(`Invalid samples: expected a non-negative integer, got ${samples}`);
  }
  const count = Math.min(samples, byteLength);
  if (count === byteLength) return Array.from({ length: byteLength }, (_, i) => i);
  const positions: number[] = new Array(count);
  // Modulo 2^32 exactly, as the CUDA kernel takes it (mix32's `+ c | 0` alone rounds seeds
  // near 2^53 first).
  const seedMix = mix32(seed >>> 0);
  for (let i = 0; i < count; i++) {
    const start = Math.floor((i * byteLength) / count);
    const end = Math.floor(((i + 1) * byteLength) / count);
    positions[i] = start + (mix32(seedMix ^ i) % (end - start));
  }
  return positions;
}
