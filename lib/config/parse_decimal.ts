/**
 * Numbers given as settings, once: every flag, environment variable, policy value and metric
 * that kvh reads as a number is checked here, so `0x10`, `1e2`, `Infinity` or a fraction where a
 * count is due are refused with the same words wherever they are written (issue 10 item 3).
 *
 * @module
 */
import { KvhError, type KvhErrorCode } from "../errors.ts";

/** What a number may be: whole or not, and its range. */
export interface DecimalBounds {
  /**
   * Reject fractions (counts).
   *
   * @default {false}
   */
  integer?: boolean;
  /** Smallest value accepted; unbounded when absent. */
  min?: number;
  /** Largest value accepted; unbounded when absent. */
  max?: number;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `a ${typeof value}`;
}

/**
 * What is wrong with a value, or `undefined` when nothing is: it must be a finite number within
 * `bounds`, whole when `bounds.integer`.
 *
 * @param value The value as parsed (any JSON value).
 * @param bounds Whole numbers only, and the range.
 * @returns A phrase such as `must be at most 100, got 150`, or `undefined`.
 *
 * @example Usage
 * ```ts
 * import { decimalProblem } from "./parse_decimal.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decimalProblem(99.9, { min: 0, max: 100 }), undefined);
 * assert.equal(decimalProblem(150, { min: 0, max: 100 }), "must be at most 100, got 150");
 * assert.equal(decimalProblem(-1, { min: 0 }), "must not be negative, got -1");
 * ```
 */
export function decimalProblem(value: unknown, bounds: DecimalBounds = {}): string | undefined {
  const { integer = false, min, max } = bounds;
  if (typeof value !== "number") return `must be a number, got ${describeType(value)}`;
  if (!Number.isFinite(value)) return `must be finite, got ${value}`;
  if (min !== undefined && value < min) {
    return min === 0
      ? `must not be negative, got ${value}`
      : `must be at least ${min}, got ${value}`;
  }
  if (integer && !Number.isInteger(value)) return `must be a whole number, got ${value}`;
  if (max !== undefined && value > max) return `must be at most ${max}, got ${value}`;
  return undefined;
}

// Decimal notation only: Number() would also read "0x10", "1e2", " 5 " and "" (as 0).
const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/;

/**
 * Parses a number written as text (a flag or an environment variable): decimal notation only,
 * then {@linkcode decimalProblem}.
 *
 * @param text The text as given.
 * @param bounds Whole numbers only, and the range.
 * @param where The flag or variable, for the message, e.g. `--coverage-min`.
 * @param code The error code: `flag_invalid` for a flag, `env_invalid` for a variable.
 * @returns The value.
 * @throws {KvhError} `Invalid <where>: <why>` with `code` (exit 1).
 *
 * @example Usage
 * ```ts
 * import { parseDecimal } from "./parse_decimal.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDecimal("99.5", { max: 100 }, "--coverage-min", "flag_invalid"), 99.5);
 * assert.throws(
 *   () => parseDecimal("0x10", {}, "--coverage-min", "flag_invalid"),
 *   /Invalid --coverage-min: expected a decimal number, got "0x10"/,
 * );
 * ```
 */
export function parseDecimal(
  text: string,
  bounds: DecimalBounds,
  where: string,
  code: Extract<KvhErrorCode, "flag_invalid" | "env_invalid">,
): number {
  if (!DECIMAL.test(text)) {
    throw new KvhError(
      code,
      `Invalid ${where}: expected a decimal number, got ${JSON.stringify(text)}`,
    );
  }
  const value = Number(text);
  const problem = decimalProblem(value, bounds);
  if (problem !== undefined) throw new KvhError(code, `Invalid ${where}: ${problem}`);
  return value;
}
