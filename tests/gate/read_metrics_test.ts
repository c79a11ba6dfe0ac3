import assert from "node:assert/strict";
import { parseGateMetrics, readGateMetrics } from "../../lib/gate/read_metrics.ts";
import { KvhError } from "../../lib/errors.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

function assertMalformed(text: string, pattern: RegExp): void {
  assert.throws(() => parseGateMetrics(text, "m.json"), (error: unknown) => {
    assert.ok(error instanceof KvhError);
    assert.equal(error.code, "metrics_malformed");
    assert.equal(error.exitCode, 1);
    assert.match(error.message, /^Malformed metrics m\.json: /);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("parseGateMetrics() reads the Python tool's flat coverage.json", async () => {
  const input = parseGateMetrics(await Deno.readTextFile(`${FIXTURES}pass.json.txt`), "pass.json");
  assert.equal(input.nested, false);
  assert.deepEqual(input.metrics, {
    min_coverage_pct: 100,
    unsanitized_regions_count: 0,
    quarantine_count: 0,
    sanitize_duration_p95_ms: 49,
    reuse_rate: 0,
  });
  assert.equal(input.document["total_buffers"], 3);
});

Deno.test("parseGateMetrics() reads metrics nested under a metrics object", async () => {
  const text = await Deno.readTextFile(`${FIXTURES}nested-metrics.json.txt`);
  const input = parseGateMetrics(text, "nested.json");
  assert.equal(input.nested, true);
  assert.equal(input.metrics.min_coverage_pct, 100);
  assert.equal(input.document["allocations"], 3);
});

Deno.test("parseGateMetrics() prefers top-level values when both shapes are present", () => {
  const input = parseGateMetrics(
    '{"quarantine_count": 2, "metrics": {"quarantine_count": 0}}',
    "m",
  );
  assert.equal(input.nested, false);
  assert.equal(input.metrics.quarantine_count, 2);
});

Deno.test("parseGateMetrics() refuses empty, truncated and non-object input", () => {
  assertMalformed("", /the file is empty/);
  assertMalformed("  \n", /the file is empty/);
  assertMalformed('{"min_coverage_pct": 100.0,', /not valid JSON/);
  assertMalformed("[1, 2]", /expected a JSON object, got an array/);
  assertMalformed("null", /expected a JSON object, got null/);
  assertMalformed('"x"', /got the string "x"/);
});

Deno.test("parseGateMetrics() refuses NaN and Infinity tokens the Python tool writes", () => {
  assertMalformed('{"min_coverage_pct": NaN}', /not valid JSON/);
  assertMalformed('{"min_coverage_pct": Infinity}', /not valid JSON/);
  assertMalformed('{"min_coverage_pct": 1e400}', /min_coverage_pct must be finite/);
});

Deno.test("parseGateMetrics() refuses strings, null, negative and fractional counts", () => {
  assertMalformed(
    '{"min_coverage_pct": "99.95"}',
    /min_coverage_pct must be a number, got the string/,
  );
  assertMalformed('{"quarantine_count": null}', /quarantine_count must be a number, got null/);
  assertMalformed('{"quarantine_count": -1}', /quarantine_count must not be negative/);
  assertMalformed(
    '{"unsanitized_regions_count": 0.9}',
    /unsanitized_regions_count must be a whole/,
  );
  assertMalformed('{"reuse_rate": true}', /reuse_rate must be a number, got a boolean/);
  assertMalformed('{"metrics": {"quarantine_count": "0"}}', /quarantine_count must be a number/);
});

Deno.test("parseGateMetrics() keeps keys it does not know as they are", () => {
  const input = parseGateMetrics('{"quarantine_count": 1.0, "kvh_extra": {"a": "b"}}', "m");
  assert.equal(input.metrics.quarantine_count, 1);
  assert.deepEqual(input.document["kvh_extra"], { a: "b" });
});

Deno.test("readGateMetrics() returns the file's bytes beside the values", async () => {
  const input = await readGateMetrics(`${FIXTURES}boundary-equal.json.txt`);
  assert.equal(input.metrics.min_coverage_pct, 99.9);
  assert.deepEqual(input.bytes, await Deno.readFile(`${FIXTURES}boundary-equal.json.txt`));
});

Deno.test("readGateMetrics() reports a missing file and invalid UTF-8 as exit 1", async () => {
  await assert.rejects(readGateMetrics(`${FIXTURES}absent.json`), (error: unknown) => {
    assert.ok(error instanceof KvhError);
    assert.equal(error.code, "metrics_unreadable");
    assert.match(error.message, /absent\.json: not found/);
    return true;
  });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/bad.json`, new Uint8Array([0x7b, 0xff, 0x7d]));
    await assert.rejects(readGateMetrics(`${dir}/bad.json`), /not valid UTF-8/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
