/**
 * Percentiles as the Python tool computes them (reference §4.4): linear interpolation between
 * closest ranks (Hyndman–Fan type 7, numpy's default).
 *
 * @module
 */

/**
 * The `q`-th percentile of `sorted` (ascending).
 *
 * @param sorted Values in ascending order.
 * @param q Percentile in [0, 100].
 * @returns The interpolated value; 0 for no values.
 *
 * @example Usage
 * ```ts
 * import { percentile } from "./percentile.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
 * ```
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (!(q >= 0 && q <= 100)) throw new RangeError(`Invalid percentile: expected 0-100, got ${q}`);
  const n = sorted.length;
  if (n === 0) return 0;
  const position = (q / 100) * (n - 1);
  const lo = Math.floor(position);
  const hi = Math.ceil(position);
  const low = sorted[lo]!;
  if (lo === hi) return low;
  const fraction = position - lo;
  return low * (1 - fraction) + sorted[hi]! * fraction;
}
