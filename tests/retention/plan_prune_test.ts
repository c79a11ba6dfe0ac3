import assert from "node:assert/strict";
import fc from "fast-check";
import { planPrune, rotatedAt } from "../../lib/retention/plan_prune.ts";
import type { ChainFile } from "../../lib/forensic/verify.ts";

function chainFile(file: string, index: number): ChainFile {
  return {
    file,
    path: `/log/${file}`,
    format: "v2",
    records: 2,
    first_seq: index * 2,
    last_seq: index * 2 + 1,
    last_hash: `${index}`.padStart(64, "0"),
    first_prev: null,
  };
}

/** Rotated files stamped on 2026-01-01 … 2026-01-0n at midnight, then the active file. */
function chain(days: number[]): ChainFile[] {
  const files = days.map((day, i) =>
    chainFile(`kv_cache-202601${String(day).padStart(2, "0")}T000000Z-${i * 2}.log`, i)
  );
  return [...files, chainFile("kv_cache.log", days.length)];
}

const NOW = new Date(Date.UTC(2026, 0, 11));

Deno.test("rotatedAt() reads v2 and v1 rotation stamps and rejects other names", () => {
  assert.equal(
    rotatedAt("kv_cache-20260102T030405Z-17.log")?.toISOString(),
    "2026-01-02T03:04:05.000Z",
  );
  assert.equal(rotatedAt("kv_cache-1767225658.log")?.getTime(), 1767225658000);
  assert.equal(rotatedAt("kv_cache.log"), undefined);
  assert.equal(rotatedAt("kv_cache-20261399T000000Z-1.log"), undefined);
});

Deno.test("planPrune() removes rotated files older than the retention, oldest first", () => {
  const plan = planPrune(chain([1, 2, 3, 8, 9]), { retentionDays: 7 }, NOW);
  assert.deepEqual(plan.remove.map((c) => [c.file, c.rules]), [
    ["kv_cache-20260101T000000Z-0.log", ["age"]],
    ["kv_cache-20260102T000000Z-2.log", ["age"]],
    ["kv_cache-20260103T000000Z-4.log", ["age"]],
  ]);
  assert.deepEqual(plan.keep, [
    "kv_cache-20260108T000000Z-6.log",
    "kv_cache-20260109T000000Z-8.log",
  ]);
  assert.equal(plan.remove[0]?.rotated_at, "2026-01-01T00:00:00.000Z");
  assert.equal(plan.remove[2]?.last_hash, "2".padStart(64, "0"));
});

Deno.test("planPrune() keeps a file exactly at the retention boundary", () => {
  const plan = planPrune(chain([1, 4]), { retentionDays: 10 }, NOW);
  assert.deepEqual(plan.remove, []);
});

Deno.test("planPrune() keeps only the newest max-rotated files", () => {
  const plan = planPrune(chain([1, 2, 3, 4]), { maxRotated: 1 }, NOW);
  assert.deepEqual(plan.remove.map((c) => c.rules), [["count"], ["count"], ["count"]]);
  assert.deepEqual(plan.keep, ["kv_cache-20260104T000000Z-6.log"]);
});

Deno.test("planPrune() with max-rotated 0 removes every rotated file but never the active one", () => {
  const plan = planPrune(chain([1, 2, 3]), { maxRotated: 0 }, NOW);
  assert.equal(plan.remove.length, 3);
  assert.ok(plan.remove.every((c) => c.file !== "kv_cache.log"));
  assert.deepEqual(plan.keep, []);
});

Deno.test("planPrune() combines both rules and removes nothing without a rule", () => {
  const plan = planPrune(chain([1, 2, 9, 10]), { retentionDays: 5, maxRotated: 1 }, NOW);
  assert.deepEqual(plan.remove.map((c) => c.rules), [["age", "count"], ["age", "count"], [
    "count",
  ]]);
  assert.deepEqual(planPrune(chain([1, 2]), {}, NOW).remove, []);
  assert.deepEqual(planPrune(chain([]), { maxRotated: 0 }, NOW), {
    remove: [],
    keep: [],
    held: [],
  });
});

Deno.test("planPrune() never removes a file in the middle of the chain", () => {
  // A clock that went backwards: the third file looks old, the first two do not.
  const plan = planPrune(chain([9, 9, 1, 10]), { retentionDays: 5 }, NOW);
  assert.deepEqual(plan.remove, []);
  assert.deepEqual(plan.held.map((c) => c.file), ["kv_cache-20260101T000000Z-4.log"]);
  assert.equal(plan.keep.length, 4);
});

Deno.test("planPrune() refuses negative, fractional and non-finite rules", () => {
  assert.throws(() => planPrune(chain([1]), { retentionDays: -1 }, NOW), RangeError);
  assert.throws(() => planPrune(chain([1]), { retentionDays: NaN }, NOW), RangeError);
  assert.throws(() => planPrune(chain([1]), { maxRotated: 1.5 }, NOW), RangeError);
  assert.throws(() => planPrune(chain([1]), { maxRotated: -1 }, NOW), RangeError);
});

Deno.test("planPrune() always removes an oldest-first prefix and keeps the newest maxRotated", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 28 }), { maxLength: 12 }),
      fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
      fc.option(fc.nat(14), { nil: undefined }),
      (days, retentionDays, maxRotated) => {
        const files = chain(days);
        const plan = planPrune(
          files,
          { retentionDays, maxRotated },
          new Date(Date.UTC(2026, 1, 1)),
        );
        const removed = plan.remove.map((c) => c.file);
        assert.deepEqual(removed, files.slice(0, removed.length).map((f) => f.file));
        assert.equal(removed.length + plan.keep.length, days.length);
        if (maxRotated !== undefined && plan.held.length === 0) {
          assert.ok(plan.keep.length <= maxRotated);
        }
      },
    ),
    { seed: 20260101, numRuns: 300 },
  );
});
