/**
 * Reads the metrics the gate checks: kvh's metrics JSON and the Python tool's `coverage.json`
 * (reference §4.2), flat or nested under `"metrics"`.
 *
 * Validation is hand-written rather than zod: importing zod costs about 40 ms of start-up on this
 * machine, most of `kvh gate`'s budget (bench/results/gate.md).
 *
 * @module
 */
import { describeIoError, KvhError } from "../errors.ts";
import type { GateMetricName, GateMetrics } from "./types.ts";

/** The metrics a gate reads and the JSON object they came from. */
export interface GateMetricsInput {
  /** The validated values the gate knows, as found. */
  metrics: GateMetrics;
  /** The object the values were read from (the inner one when nested), echoed in the verdict. */
  document: Record<string, unknown>;
  /** Whether the values sat under a top-level `"metrics"` object. */
  nested: boolean;
}

/** The gate's metrics and whether each is a count (a whole number). */
const GATE_METRICS: ReadonlyArray<readonly [GateMetricName, boolean]> = [
  ["min_coverage_pct", false],
  ["unsanitized_regions_count", true],
  ["quarantine_count", true],
  ["sanitize_duration_p95_ms", false],
  ["reuse_rate", false],
];

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `a ${typeof value}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Parses and validates metrics JSON. Every value the gate knows must be a JSON number that is
 * finite and not negative, and counts must be whole: strings, `null`, `NaN` or `Infinity` tokens,
 * numbers too large for a double, negative or fractional counts are refused, even where the
 * Python tool let them pass. Other keys are kept as they are.
 *
 * @param text The file's text.
 * @param name The file's name, used in messages.
 * @returns The values and the object they came from.
 * @throws {KvhError} `metrics_malformed` (exit 1) naming the file and what was wrong.
 *
 * @example Usage
 * ```ts
 * import { parseGateMetrics } from "./read_metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const input = parseGateMetrics('{"metrics": {"quarantine_count": 1}}', "coverage.json");
 * assert.equal(input.metrics.quarantine_count, 1);
 * assert.equal(input.nested, true);
 * ```
 */
export function parseGateMetrics(text: string, name: string): GateMetricsInput {
  const malformed = (detail: string) =>
    new KvhError("metrics_malformed", `Malformed metrics ${name}: ${detail}`);
  if (text.trim() === "") throw malformed("the file is empty");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    // V8 quotes the input in its message; keep the diagnostic on one short line.
    throw malformed(`not valid JSON: ${detail.replace(/\s+/g, " ").slice(0, 160)}`);
  }
  if (!isObject(parsed)) throw malformed(`expected a JSON object, got ${describeType(parsed)}`);
  const hasGateKey = (object: Record<string, unknown>) =>
    GATE_METRICS.some(([key]) => Object.hasOwn(object, key));
  const inner = parsed["metrics"];
  const nested = !hasGateKey(parsed) && isObject(inner);
  const document = nested ? inner : parsed;
  const metrics: GateMetrics = {};
  for (const [key, isCount] of GATE_METRICS) {
    if (!Object.hasOwn(document, key)) continue;
    const value = document[key];
    if (typeof value !== "number") {
      throw malformed(`${key} must be a number, got ${describeType(value)}`);
    }
    if (!Number.isFinite(value)) throw malformed(`${key} must be finite, got ${value}`);
    if (value < 0) throw malformed(`${key} must not be negative, got ${value}`);
    if (isCount && !Number.isInteger(value)) {
      throw malformed(`${key} must be a whole count, got ${value}`);
    }
    metrics[key] = value;
  }
  return { metrics, document, nested };
}

/**
 * Reads a metrics file and validates it with {@linkcode parseGateMetrics}.
 *
 * @param path The metrics file.
 * @returns The values, the object they came from, and the file's bytes (for an evidence bundle).
 * @throws {KvhError} `metrics_unreadable` or `metrics_malformed` (exit 1).
 *
 * @example Usage
 * ```ts
 * import { readGateMetrics } from "./read_metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await Deno.writeTextFile(`${dir}/m.json`, '{"min_coverage_pct": 100.0}');
 *   const input = await readGateMetrics(`${dir}/m.json`);
 *   assert.equal(input.metrics.min_coverage_pct, 100);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function readGateMetrics(
  path: string,
): Promise<GateMetricsInput & { bytes: Uint8Array<ArrayBuffer> }> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new KvhError(
      "metrics_unreadable",
      `Cannot read metrics ${path}: ${describeIoError(error)}`,
      {
        cause: error,
      },
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new KvhError("metrics_malformed", `Malformed metrics ${path}: not valid UTF-8`, {
      cause: error,
    });
  }
  return { ...parseGateMetrics(text, path), bytes };
}
