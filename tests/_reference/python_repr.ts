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
 * Finds the fewest significant digits that read back as `x`, by trying every precision.
 * `toPrecision(p)` is the correctly rounded p-digit decimal, i.e. the closest one.
 */
function shortestDigits(x: number): { digits: string; exponent: number } {
  for (let precision = 1; precision <= 17; precision++) {
    const text = x.toPrecision(precision);
    if (Number(text) === x) return decompose(text);
  }
  throw new Error(`No round-trip precision found: ${x}`);
}

/** Splits `toPrecision` output (positional or exponential) into digits and decimal exponent. */
function decompose(text: string): { digits: string; exponent: number } {
  const [mantissa, exponentText] = text.split("e") as [string, string | undefined];
  const [whole, fraction = ""] = mantissa.split(".") as [string, string | undefined];
  let digits = whole + fraction;
  let exponent = (exponentText === undefined ? 0 : Number(exponentText)) + whole.length - 1;
  while (digits.length > 1 && digits[0] === "0") {
    digits = digits.slice(1);
    exponent--;
  }
  digits = digits.replace(/0+$/, "") || "0";
  return { digits, exponent };
}

/** d1d2d3… × 10^exponent (with d1 in front of the point) written without an exponent. */
function positional(digits: string, exponent: number): string {
  if (exponent < 0) return `0.${"0".repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
  const fraction = digits.slice(exponent + 1);
  return `${whole}.${fraction === "" ? "0" : fraction}`;
}
