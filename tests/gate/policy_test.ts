import assert from "node:assert/strict";
import { gatePolicyThresholds, parseGatePolicy, readGatePolicy } from "../../lib/gate/policy.ts";
import { KvhError } from "../../lib/errors.ts";

function assertInvalid(text: string, pattern: RegExp): void {
  assert.throws(() => parseGatePolicy(text, "policy.json"), (error: unknown) => {
    assert.ok(error instanceof KvhError);
    assert.equal(error.code, "policy_invalid");
    assert.equal(error.exitCode, 1);
    assert.match(error.message, /^Invalid policy policy\.json: /);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("parseGatePolicy() accepts the thresholds of a Python verdict", () => {
  const policy = parseGatePolicy(
    JSON.stringify({
      coverage_pct_min: 99.9,
      unsanitized_regions_max: 0,
      quarantine_count_max: 0,
      reuse_rate_max: null,
      sanitize_p95_ms_max: 50,
    }),
    "policy.json",
  );
  assert.deepEqual(gatePolicyThresholds(policy), {
    coverageMinPct: 99.9,
    unsanitizedMax: 0,
    quarantineMax: 0,
    reuseRateMax: null,
    p95MaxMs: 50,
  });
});

Deno.test("parseGatePolicy() names unknown keys", () => {
  assertInvalid('{"coverage_min": 99}', /unknown key "coverage_min"$/);
  assertInvalid('{"a": 1, "b": 2}', /unknown keys "a", "b"/);
});

Deno.test("parseGatePolicy() refuses wrong types, impossible values and duplicate keys", () => {
  assertInvalid(
    '{"coverage_pct_min": "99.9"}',
    /coverage_pct_min: must be a number, got the string/,
  );
  assertInvalid('{"quarantine_count_max": 0.5}', /quarantine_count_max: must be a whole number/);
  assertInvalid('{"unsanitized_regions_max": -1}', /unsanitized_regions_max: must not be negative/);
  assertInvalid('{"coverage_pct_min": null}', /coverage_pct_min: cannot be null/);
  assertInvalid('{"coverage_pct_min": 150}', /coverage_pct_min: must be at most 100, got 150/);
  assertInvalid('{"quarantine_count_max": 1, "quarantine_count_max": 0}', /duplicate key/);
  assertInvalid("[]", /expected an object of thresholds/);
  assertInvalid("", /the file is empty/);
  assertInvalid("{", /not valid JSON/);
});

Deno.test("gatePolicyThresholds() leaves out what a policy does not mention", () => {
  assert.deepEqual(gatePolicyThresholds(parseGatePolicy("{}", "p")), {});
});

Deno.test("readGatePolicy() reads a file and reports a missing one as exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/p.json`, '{"reuse_rate_max": 0.25}');
    assert.equal((await readGatePolicy(`${dir}/p.json`)).reuse_rate_max, 0.25);
    await assert.rejects(readGatePolicy(`${dir}/absent.json`), (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "policy_unreadable");
      assert.match(error.message, /absent\.json: not found/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
