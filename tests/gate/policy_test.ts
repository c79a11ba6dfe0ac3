import assert from "node:assert/strict";
import { parsePolicy, policyThresholds, readPolicy } from "../../lib/gate/policy.ts";
import { KvhError } from "../../lib/errors.ts";

function assertInvalid(text: string, pattern: RegExp): void {
  assert.throws(() => parsePolicy(text, "policy.json"), (error: unknown) => {
    assert.ok(error instanceof KvhError);
    assert.equal(error.code, "policy_invalid");
    assert.equal(error.exitCode, 1);
    assert.match(error.message, /^Invalid policy policy\.json: /);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("parsePolicy() accepts the thresholds of a Python verdict", () => {
  const policy = parsePolicy(
    JSON.stringify({
      coverage_pct_min: 99.9,
      unsanitized_regions_max: 0,
      quarantine_count_max: 0,
      reuse_rate_max: null,
      sanitize_p95_ms_max: 50,
    }),
    "policy.json",
  );
  assert.deepEqual(policyThresholds(policy), {
    coverageMinPct: 99.9,
    unsanitizedMax: 0,
    quarantineMax: 0,
    reuseRateMax: null,
    p95MaxMs: 50,
  });
});

Deno.test("parsePolicy() names unknown keys", () => {
  assertInvalid('{"coverage_min": 99}', /unknown key "coverage_min"$/);
  assertInvalid('{"a": 1, "b": 2}', /unknown keys "a", "b"/);
});

Deno.test("parsePolicy() refuses wrong types, negatives and fractional counts", () => {
  assertInvalid('{"coverage_pct_min": "99.9"}', /coverage_pct_min: .*expected number/);
  assertInvalid('{"quarantine_count_max": 0.5}', /quarantine_count_max: .*int/);
  assertInvalid('{"unsanitized_regions_max": -1}', /unsanitized_regions_max: /);
  assertInvalid('{"coverage_pct_min": null}', /coverage_pct_min: /);
  assertInvalid("[]", /expected object/);
  assertInvalid("", /the file is empty/);
  assertInvalid("{", /not valid JSON/);
});

Deno.test("policyThresholds() leaves out what a policy does not mention", () => {
  assert.deepEqual(policyThresholds(parsePolicy("{}", "p")), {});
});

Deno.test("readPolicy() reads a file and reports a missing one as exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/p.json`, '{"reuse_rate_max": 0.25}');
    assert.equal((await readPolicy(`${dir}/p.json`)).reuse_rate_max, 0.25);
    await assert.rejects(readPolicy(`${dir}/absent.json`), (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "policy_unreadable");
      assert.match(error.message, /absent\.json: not found/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
