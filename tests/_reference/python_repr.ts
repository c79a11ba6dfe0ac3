/**
 * Slow, obviously correct `repr(float)` of CPython, written from python-tool.md §2.3 and the
 * CPython documentation of `float_repr_style = 'short'`: the shortest decimal digit string that
 * reads back as the same double, positional notation iff the decimal exponent is in [-4, 16),
 * otherwise scientific with an explicit exponent sign and at least two exponent digits.
 * Test-only: it cross-checks the fast formatter in lib/forensic/format_v1.ts.
 *
 * @module
 */

/**
 * Returns CPython's `repr(x)` for a float, with `NaN`/`Infinity` spelled as in JSON.
 *
 * @param x The value.
 * @returns The Python spelling.
 */
export function referencePythonRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  if (x === 0) return sign + "0.0";
  const { digits, exponent } = shortestDigits(Math.abs(x));
  if (exponent >= -4 && exponent < 16) return sign + positional(digits, exponent);
  const mantissa = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
  const magnitude = String(Math.abs(exponent)).padStart(2, "0");
  return `${sign}${mantissa}e${exponent < 0 ? "-" : "+"}${magnitude}`;
}

/**
 * Finds the fewest significant digits that read back as `x`; among candidates of that length
 * the one closest to the exact value of `x`, ties to an even last digit (David Gay's mode 0,
 * which CPython uses). Exact rational arithmetic with BigInt; `Number()` parsing (correctly
 * rounded by the ECMAScript spec) is the round-trip oracle.
 */
function shortestDigits(x: number): { digits: string; exponent: number } {
  const [numerator, denominator] = exactRational(x);
  let k = Math.floor(Math.log10(x));
  // log10 may be off by one near powers of ten; fix k so that 10^k <= x < 10^(k+1) exactly.
  while (compareScaled(numerator, denominator, k) < 0) k--;
  while (compareScaled(numerator, denominator, k + 1) >= 0) k++;
  for (let precision = 1; precision <= 17; precision++) {
    const scale = k - precision + 1; // value of the last digit
    // q = x / 10^scale as an exact fraction qn / qd.
    const qn = scale >= 0 ? numerator : numerator * 10n ** BigInt(-scale);
    const qd = scale >= 0 ? denominator * 10n ** BigInt(scale) : denominator;
    const low = qn / qd;
    const remainder = qn - low * qd;
    const candidates: bigint[] = [];
    if (Number(`${low}e${scale}`) === x) candidates.push(low);
    if (remainder !== 0n && Number(`${low + 1n}e${scale}`) === x) candidates.push(low + 1n);
    if (candidates.length === 0) continue;
    let chosen = candidates[0]!;
    if (candidates.length === 2) {
      const twice = 2n * remainder;
      if (twice > qd) chosen = low + 1n;
      else if (twice === qd) chosen = low % 2n === 0n ? low : low + 1n;
    }
    const text = chosen.toString();
    const digits = text.replace(/0+$/, "");
    return { digits, exponent: scale + text.length - 1 };
  }
  throw new Error(`No round-trip precision found: ${x}`);
}

/** The exact value of a positive finite double as numerator / denominator. */
function exactRational(x: number): [bigint, bigint] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const exponent = (biased === 0 ? 1 : biased) - 1075;
  return exponent >= 0 ? [mantissa << BigInt(exponent), 1n] : [mantissa, 1n << BigInt(-exponent)];
}

/** Sign of (n / d) - 10^k. */
function compareScaled(n: bigint, d: bigint, k: number): number {
  const left = k >= 0 ? n : n * 10n ** BigInt(-k);
  const right = k >= 0 ? d * 10n ** BigInt(k) : d;
  return left < right ? -1 : left > right ? 1 : 0;
}

/** d1d2d3… × 10^exponent (with d1 in front of the point) written without an exponent. */
function positional(digits: string, exponent: number): string {
  if (exponent < 0) return `0.${"0".repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
  const fraction = digits.slice(exponent + 1);
  return `${whole}.${fraction === "" ? "0" : fraction}`;
}
