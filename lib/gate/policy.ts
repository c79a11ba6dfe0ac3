/**
 * Gate policy files: the gate's thresholds as JSON, named as in the Python tool's verdict
 * (`thresholds`, reference §5), so the thresholds of an earlier verdict can be reused as a policy.
 *
 * @module
 */
import { describeIoError, KvhError } from "../errors.ts";
import { parseStrictJson } from "./_strict_json.ts";
import { THRESHOLDS, thresholdValueProblem } from "./thresholds.ts";
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

/**
 * Parses and validates a policy against the threshold table: unknown keys (a misspelt threshold
 * must not silently fall back to a default), duplicate keys, values the threshold cannot take
 * and `null` for a threshold that cannot be off are refused with a message naming the key.
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
  const parsed = parseStrictJson(text);
  if (!parsed.ok) throw invalid(parsed.problem);
  const value = parsed.value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("expected an object of thresholds");
  }
  const known = new Map(THRESHOLDS.map((spec) => [spec.policyKey as string, spec]));
  const unknown = Object.keys(value).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    const keys = unknown.map((key) => JSON.stringify(key)).join(", ");
    throw invalid(`unknown key${unknown.length > 1 ? "s" : ""} ${keys}`);
  }
  const policy: Record<string, number | null> = {};
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    const spec = known.get(key)!;
    if (entry === null && spec.default === undefined) {
      policy[key] = null;
      continue;
    }
    const problem = thresholdValueProblem(spec, entry);
    if (problem !== undefined) {
      throw invalid(
        `${key}: ${entry === null ? "cannot be null, the check is always on" : problem}`,
      );
    }
    policy[key] = entry as number;
  }
  return policy as GatePolicy;
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
  const out: { [K in keyof GateThresholds]?: number | null } = {};
  for (const spec of THRESHOLDS) {
    const value = policy[spec.policyKey];
    if (value !== undefined) out[spec.key] = value;
  }
  return out;
}
