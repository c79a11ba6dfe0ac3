/**
 * Byte sizes as operators write them (`4KiB`, `64MiB`, `1GiB`, `1048576`) for
 * `kvh sanitize-bench --sizes` and `--blocks COUNTxSIZE`.
 *
 * @module
 */
import { KvhError } from "../errors.ts";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
};

/**
 * Parses one size: a positive integer with an optional binary (`KiB`, `MiB`, `GiB`, `TiB`, or
 * `K`/`M`/`G`/`T`) or decimal (`KB`, `MB`, `GB`, `TB`) unit, case-insensitive.
 *
 * @param text The size, e.g. `64MiB`.
 * @returns Bytes, or `undefined` when `text` is not a size.
 *
 * @example Usage
 * ```ts
 * import { parseSize } from "./sizes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseSize("4KiB"), 4096);
 * assert.equal(parseSize("1GB"), 1e9);
 * assert.equal(parseSize("lots"), undefined);
 * ```
 */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  if (match === null) return undefined;
  const unit = UNITS[match[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Number(match[1]) * unit;
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Parses the `--sizes` list; a bad entry is a usage error naming it.
 *
 * @param text Comma-separated sizes, e.g. `4KiB,1MiB,64MiB`.
 * @returns Bytes per entry, in the order given.
 * @throws {KvhError} `flag_invalid` naming the first bad entry.
 *
 * @example Usage
 * ```ts
 * import { parseSizes } from "./sizes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseSizes("4KiB,1MiB"), [4096, 1048576]);
 * assert.throws(() => parseSizes("4KiB,4XB"), /Invalid --sizes: "4XB"/);
 * ```
 */
export function parseSizes(text: string): number[] {
  const entries = text.split(",");
  return entries.map((entry) => {
    const bytes = parseSize(entry);
    if (bytes === undefined) {
      throw new KvhError(
        "flag_invalid",
        `Invalid --sizes: ${JSON.stringify(entry.trim())} is not a size (e.g. 4KiB, 64MiB, 1GiB)`,
      );
    }
    return bytes;
  });
}

/** Small-block geometry of `--blocks COUNTxSIZE`. */
export interface BlockGeometry {
  /** Number of blocks in the pool. */
  count: number;
  /** Bytes per block. */
  blockBytes: number;
}

/**
 * Parses `--blocks COUNTxSIZE`, e.g. `16384x64KiB`.
 *
 * @param text The flag value.
 * @returns Block count and size.
 * @throws {KvhError} `flag_invalid` when the value is not COUNTxSIZE.
 *
 * @example Usage
 * ```ts
 * import { parseBlocks } from "./sizes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseBlocks("16384x64KiB"), { count: 16384, blockBytes: 65536 });
 * ```
 */
export function parseBlocks(text: string): BlockGeometry {
  const match = /^\s*(\d+)\s*x\s*(.+)$/i.exec(text);
  const count = match ? Number(match[1]) : 0;
  const blockBytes = match ? parseSize(match[2]!) : undefined;
  if (!match || !Number.isSafeInteger(count) || count < 1 || count > 2 ** 32 - 1 || !blockBytes) {
    throw new KvhError(
      "flag_invalid",
      `Invalid --blocks: ${JSON.stringify(text)} is not COUNTxSIZE (e.g. 16384x64KiB)`,
    );
  }
  return { count, blockBytes };
}

/**
 * Formats bytes with the largest binary unit that divides them (`64MiB`), else a decimal
 * approximation (`1.5 MiB`).
 *
 * @param bytes A byte count.
 * @returns The size as text.
 *
 * @example Usage
 * ```ts
 * import { formatSize } from "./sizes.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatSize(65536), "64KiB");
 * assert.equal(formatSize(1000), "1000B");
 * ```
 */
export function formatSize(bytes: number): string {
  for (
    const [unit, factor] of [["TiB", 1024 ** 4], ["GiB", 1024 ** 3], ["MiB", 1024 ** 2], [
      "KiB",
      1024,
    ]] as const
  ) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  for (const [unit, factor] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= factor) return `${(bytes / factor).toFixed(1)} ${unit}`;
  }
  return `${bytes}B`;
}
