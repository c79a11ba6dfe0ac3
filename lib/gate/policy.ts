/**
 * Gate policy files: the gate's thresholds as JSON, named as in the Python tool's verdict
 * (`thresholds`, reference §5), so the thresholds of an earlier verdict can be reused as a policy.
 *
 * @module
 */
import { z } from "zod";
import { describeIoError, KvhError } from "../errors.ts";
import type { GateThresholds } from "./types.ts";

/**
 * A gate policy: the thresholds as the Python tool's verdict names them. Every key is optional;
 * an absent key leaves the flag, environment or default in place, and `null` turns an optional
 * check off.
 */
export interface GatePolicy {
  /** Minimum coverage in percent. */
  coverage_pct_min?: number;
  /** Maximum unsanitized buffers. */
  unsanitized_regions_max?: number;
  /** Maximum quarantined buffers. */
  quarantine_count_max?: number;
  /** Maximum reuse rate, or null for no check. */
  reuse_rate_max?: number | null;
  /** Maximum p95 scrub duration in milliseconds, or null for no check. */
  sanitize_p95_ms_max?: number | null;
}

const count = z.number().int().min(0);
const amount = z.number().min(0);

/** Unknown keys are refused: a misspelt threshold must not silently fall back to a default. */
const POLICY_SCHEMA: z.ZodType<GatePolicy> = z.strictObject({
  coverage_pct_min: amount.optional(),
  unsanitized_regions_max: count.optional(),
  quarantine_count_max: count.optional(),
  reuse_rate_max: amount.nullable().optional(),
  sanitize_p95_ms_max: amount.nullable().optional(),
});

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((key) => JSON.stringify(key)).join(", ");
    return `unknown key${issue.keys.length > 1 ? "s" : ""} ${keys}`;
  }
  const path = issue.path.map(String).join(".");
  return path === "" ? issue.message : `${path}: ${issue.message}`;
}

/**
 * Parses and validates a policy. Unknown keys, non-numbers, negative values and fractional counts
 * are refused with a message naming the key.
 *
 * @param text The policy file's text.
 * @param name The file's name, used in messages.
 * @returns The policy.
 * @throws {KvhError} `policy_invalid` (exit 1).
 *
 * @example Usage
 * ```ts
 * import { parseGatePolicy } from "./policy.ts";
 * import assert from "node:assert/strict";
 *
 * const policy = parseGatePolicy('{"coverage_pct_min": 99.99, "reuse_rate_max": null}', "policy.json");
 * assert.equal(policy.coverage_pct_min, 99.99);
 * assert.throws(() => parseGatePolicy('{"coverage_min": 99}', "policy.json"), /unknown key "coverage_min"/);
 * ```
 */
export function parseGatePolicy(text: string, name: string): GatePolicy {
  const invalid = (detail: string) =>
    new KvhError("policy_invalid", `Invalid policy ${name}: ${detail}`);
  if (text.trim() === "") throw invalid("the file is empty");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw invalid(`not valid JSON: ${detail.replace(/\s+/g, " ").slice(0, 160)}`);
  }
  const result = POLICY_SCHEMA.safeParse(parsed);
  if (!result.success) {
    throw invalid(result.error.issues.map(describeIssue).join("; "));
  }
  return result.data;
}

/**
 * Reads a policy file and validates it with {@linkcode parseGatePolicy}.
 *
 * @param path The policy file.
 * @returns The policy.
 * @throws {KvhError} `policy_unreadable` or `policy_invalid` (exit 1).
 *
 * @example Usage
 * ```ts
 * import { readGatePolicy } from "./policy.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await Deno.writeTextFile(`${dir}/policy.json`, '{"quarantine_count_max": 2}');
 *   assert.equal((await readGatePolicy(`${dir}/policy.json`)).quarantine_count_max, 2);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function readGatePolicy(path: string): Promise<GatePolicy> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new KvhError(
      "policy_unreadable",
      `Cannot read policy ${path}: ${describeIoError(error)}`,
      {
        cause: error,
      },
    );
  }
  return parseGatePolicy(text, path);
}

/**
 * The thresholds a policy sets, in {@linkcode GateThresholds} form. A `null` optional threshold
 * maps to `null` so the caller can tell "turned off" from "not mentioned" (`undefined`).
 *
 * @param policy A validated policy.
 * @returns The thresholds it sets.
 *
 * @example Usage
 * ```ts
 * import { gatePolicyThresholds } from "./policy.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(gatePolicyThresholds({ quarantine_count_max: 1, reuse_rate_max: null }), {
 *   quarantineMax: 1,
 *   reuseRateMax: null,
 * });
 * ```
 */
export function gatePolicyThresholds(
  policy: GatePolicy,
): { [K in keyof GateThresholds]?: GateThresholds[K] | null } {
  const out: { [K in keyof GateThresholds]?: GateThresholds[K] | null } = {};
  if (policy.coverage_pct_min !== undefined) out.coverageMinPct = policy.coverage_pct_min;
  if (policy.unsanitized_regions_max !== undefined) {
    out.unsanitizedMax = policy.unsanitized_regions_max;
  }
  if (policy.quarantine_count_max !== undefined) out.quarantineMax = policy.quarantine_count_max;
  if (policy.reuse_rate_max !== undefined) out.reuseRateMax = policy.reuse_rate_max;
  if (policy.sanitize_p95_ms_max !== undefined) out.p95MaxMs = policy.sanitize_p95_ms_max;
  return out;
}
