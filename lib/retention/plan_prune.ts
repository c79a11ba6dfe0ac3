/**
 * Which rotated files a prune removes (DESIGN.md §3 `prune`): pure, so the rules are testable
 * without a file system. Only the oldest contiguous run of rotated files can go (never a file in
 * the middle of the chain, never the active file), so what remains is still one linked history.
 *
 * @module
 */
import type { ChainFile } from "../forensic/verify.ts";

/** Retention rules; a rule that is not set removes nothing. */
export interface PrunePolicy {
  /** Remove rotated files rotated more than this many days ago. */
  retentionDays?: number;
  /** Keep at most this many rotated files, the newest; 0 removes every rotated file. */
  maxRotated?: number;
}

/** Why a file is (or would be) removed. */
export type PruneRule = "age" | "count";

/**
 * A rotated file a prune removes, with the chain facts the prune record names (verification
 * found them; `first_prev` stays with the file that is kept).
 */
export interface PruneCandidate extends Omit<ChainFile, "first_prev"> {
  /** Rotation time read from the name (RFC 3339), or null when the name carries none. */
  rotated_at: string | null;
  /** The rules that select it. */
  rules: PruneRule[];
}

/** The outcome of {@linkcode planPrune}. */
export interface PrunePlan {
  /** Files to remove, oldest first: always a prefix of the rotated files. */
  remove: PruneCandidate[];
  /** Rotated files that stay. */
  keep: string[];
  /** Files a rule selects that stay because an older file before them is kept (no gaps). */
  held: PruneCandidate[];
}

const V2_STAMP = /-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-\d+\.log$/;
const V1_STAMP = /-(\d{1,12})\.log$/;

/**
 * The rotation time a rotated file's name carries: `<stem>-<yyyymmddThhmmssZ>-<seq>.log` (v2) or
 * `<stem>-<unix seconds>.log` (v1, the Python tool).
 *
 * @param name A rotated file's base name.
 * @returns The time, or undefined when the name carries none.
 *
 * @example Usage
 * ```ts
 * import { rotatedAt } from "./plan_prune.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(rotatedAt("kv_cache-20260101T000009Z-9.log")?.toISOString(), "2026-01-01T00:00:09.000Z");
 * assert.equal(rotatedAt("kv_cache-1767225609.log")?.toISOString(), "2026-01-01T00:00:09.000Z");
 * ```
 */
export function rotatedAt(name: string): Date | undefined {
  const v2 = V2_STAMP.exec(name);
  if (v2) {
    const [year, month, day, hour, minute, second] = v2.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
    // Date.UTC rolls month 13 or second 61 over; a stamp must name a real instant.
    const exact = date.getUTCMonth() === month - 1 && date.getUTCDate() === day &&
      date.getUTCHours() === hour && date.getUTCMinutes() === minute &&
      date.getUTCSeconds() === second;
    return exact ? date : undefined;
  }
  const v1 = V1_STAMP.exec(name);
  return v1 ? new Date(Number(v1[1]) * 1000) : undefined;
}

/**
 * Plans a prune over a verified chain. A rotated file is selected when it was rotated more than
 * `retentionDays` ago, or when more than `maxRotated` newer rotated files exist; selected files
 * are removed oldest first, and only as long as every older file goes too.
 *
 * @param chain The files of a verified history in chain order, the active file last.
 * @param policy The retention rules.
 * @param now The time ages are measured from.
 * @returns Files to remove, files kept, and selected files held back to avoid a gap.
 * @throws {RangeError} When a rule is negative, not finite, or `maxRotated` is fractional.
 *
 * @example Usage
 * ```ts
 * import { planPrune } from "./plan_prune.ts";
 * import assert from "node:assert/strict";
 *
 * const file = (name: string) => ({
 *   file: name, path: name, format: "v1" as const, records: 9,
 *   first_seq: null, last_seq: null, last_hash: "ab", first_prev: null,
 * });
 * const chain = [file("kv-1767225609.log"), file("kv-1767225618.log"), file("kv.log")];
 * const plan = planPrune(chain, { maxRotated: 1 }, new Date());
 * assert.deepEqual(plan.remove.map((c) => c.file), ["kv-1767225609.log"]);
 * assert.deepEqual(plan.keep, ["kv-1767225618.log"]);
 * ```
 */
export function planPrune(
  chain: readonly ChainFile[],
  policy: PrunePolicy,
  now: Date,
): PrunePlan {
  const { retentionDays, maxRotated } = policy;
  if (retentionDays !== undefined && !(Number.isFinite(retentionDays) && retentionDays >= 0)) {
    throw new RangeError(`Invalid retention days: expected a number >= 0, got ${retentionDays}`);
  }
  if (maxRotated !== undefined && !(Number.isSafeInteger(maxRotated) && maxRotated >= 0)) {
    throw new RangeError(`Invalid max rotated: expected a whole number >= 0, got ${maxRotated}`);
  }
  const rotated = chain.slice(0, -1);
  const cutoff = retentionDays === undefined
    ? undefined
    : now.getTime() - retentionDays * 86_400_000;
  const countCut = maxRotated === undefined ? 0 : Math.max(0, rotated.length - maxRotated);
  const plan: PrunePlan = { remove: [], keep: [], held: [] };
  let prefix = true;
  rotated.forEach((info, index) => {
    const at = rotatedAt(info.file);
    const rules: PruneRule[] = [];
    if (cutoff !== undefined && at !== undefined && at.getTime() < cutoff) rules.push("age");
    if (index < countCut) rules.push("count");
    const candidate: PruneCandidate = {
      file: info.file,
      path: info.path,
      format: info.format,
      records: info.records,
      first_seq: info.first_seq,
      last_seq: info.last_seq,
      last_hash: info.last_hash,
      rotated_at: at === undefined ? null : at.toISOString(),
      rules,
    };
    if (rules.length === 0) {
      prefix = false;
      plan.keep.push(info.file);
    } else if (prefix) {
      plan.remove.push(candidate);
    } else {
      plan.held.push(candidate);
      plan.keep.push(info.file);
    }
  });
  return plan;
}
