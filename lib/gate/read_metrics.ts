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
import {
  FileTooLargeError,
  NotRegularFileError,
  readRegularFileSync,
} from "../io/read_regular_file.ts";
import { RUN_STATUSES, type RunStatus } from "../metrics/types.ts";
import { parseStrictJson } from "./_strict_json.ts";
import { THRESHOLDS, thresholdValueProblem } from "./thresholds.ts";
import type { GateMetrics } from "./types.ts";

/** Largest metrics file read; a metrics document is a few kilobytes. */
export const METRICS_MAX_BYTES = 1024 * 1024;

/** The metrics a gate reads and the JSON object they came from. */
export interface GateMetricsInput {
  /** The validated values the gate knows, as found. */
  metrics: GateMetrics;
  /** The object the values were read from (the inner one when nested), echoed in the verdict. */
  document: Record<string, unknown>;
  /** Whether the values sat under a top-level `"metrics"` object. */
  nested: boolean;
}

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
 * Parses and validates metrics JSON. Every value the gate knows must be a JSON number the metric
 * can take (finite, not negative, whole for counts, a coverage of at most 100 percent): strings,
 * `null`, `NaN` or `Infinity` tokens, numbers too large for a double, negative or fractional
 * counts are refused, even where the Python tool let them pass. So are a duplicate key anywhere
 * (`JSON.parse` would keep the last), a byte order mark and nesting deeper than 64 levels. A
 * `run_status` (kvh's metrics) must be one of `RUN_STATUSES`; the Python tool's files have none.
 * Other keys are kept as they are.
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
  const result = parseStrictJson(text);
  if (!result.ok) throw malformed(result.problem);
  const parsed = result.value;
  if (!isObject(parsed)) throw malformed(`expected a JSON object, got ${describeType(parsed)}`);
  const hasGateKey = (object: Record<string, unknown>) =>
    THRESHOLDS.some((spec) => Object.hasOwn(object, spec.metric));
  const inner = parsed["metrics"];
  const nested = !hasGateKey(parsed) && isObject(inner);
  const document = nested ? inner : parsed;
  const metrics: GateMetrics = {};
  for (const spec of THRESHOLDS) {
    if (!Object.hasOwn(document, spec.metric)) continue;
    const value = document[spec.metric];
    const problem = thresholdValueProblem(spec, value);
    if (problem !== undefined) throw malformed(`${spec.metric} ${problem}`);
    metrics[spec.metric] = value as number;
  }
  const status = Object.hasOwn(document, "run_status")
    ? document["run_status"]
    : parsed["run_status"];
  if (status !== undefined) {
    if (!RUN_STATUSES.includes(status as RunStatus)) {
      throw malformed(
        `run_status must be one of ${RUN_STATUSES.join(", ")}, got ${describeType(status)}`,
      );
    }
    metrics.run_status = status as RunStatus;
  }
  return { metrics, document, nested };
}

/**
 * Reads a metrics file and validates it with {@linkcode parseGateMetrics}.
 *
 * @param path The metrics file.
 * @returns The values, the object they came from, and the file's bytes (for an evidence bundle).
 * @throws {KvhError} `metrics_unreadable` (missing, not a regular file, over
 * {@linkcode METRICS_MAX_BYTES}) or `metrics_malformed` (exit 1).
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
export function readGateMetrics(
  path: string,
): Promise<GateMetricsInput & { bytes: Uint8Array<ArrayBuffer> }> {
  // The read is synchronous (a few kilobytes, once per run); the promise keeps the public shape.
  try {
    return Promise.resolve(readMetricsFile(path));
  } catch (error) {
    return Promise.reject(error);
  }
}

function readMetricsFile(path: string): GateMetricsInput & { bytes: Uint8Array<ArrayBuffer> } {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    // Decided on the opened file before reading: a FIFO, /dev/zero or a huge file is refused.
    bytes = readRegularFileSync(path, { maxBytes: METRICS_MAX_BYTES }).bytes;
  } catch (error) {
    const why = error instanceof NotRegularFileError
      ? "not a regular file"
      : error instanceof FileTooLargeError
      ? `larger than ${METRICS_MAX_BYTES} bytes (${error.size})`
      : describeIoError(error);
    throw new KvhError("metrics_unreadable", `Cannot read metrics ${path}: ${why}`, {
      cause: error,
    });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (error) {
    throw new KvhError("metrics_malformed", `Malformed metrics ${path}: not valid UTF-8`, {
      cause: error,
    });
  }
  return { ...parseGateMetrics(text, path), bytes };
}
