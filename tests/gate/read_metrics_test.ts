import assert from "node:assert/strict";
import {
  METRICS_MAX_BYTES,
  parseGateMetrics,
  readGateMetrics,
} from "../../lib/gate/read_metrics.ts";
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

Deno.test("parseGateMetrics() refuses a duplicate key at any depth (JSON.parse keeps the last)", () => {
  assertMalformed(
    '{"quarantine_count": 5, "quarantine_count": 0}',
    /duplicate key "quarantine_count" in one object/,
  );
  assertMalformed('{"metrics": {"a": 1, "b": {"c": 1, "c": 2}}}', /duplicate key "c"/);
  // The same key in two objects, or escaped differently but equal, is judged by its value.
  assert.equal(parseGateMetrics('{"a": {"k": 1}, "b": {"k": 2}}', "m").nested, false);
  assertMalformed('{"k": 1, "\\u006b": 2}', /duplicate key "k"/);
  // A key-like string as a value or in an array is not a key.
  assert.equal(parseGateMetrics('{"a": "a", "b": ["a", "a"], "c": "a"}', "m").nested, false);
});

Deno.test("parseGateMetrics() refuses a coverage above 100 percent", () => {
  assertMalformed(
    '{"min_coverage_pct": 100.5}',
    /min_coverage_pct must be at most 100, got 100\.5/,
  );
  assert.equal(parseGateMetrics('{"min_coverage_pct": 100}', "m").metrics.min_coverage_pct, 100);
});

Deno.test("parseGateMetrics() refuses a byte order mark and deep nesting with a clear reason", () => {
  assertMalformed('\ufeff{"quarantine_count": 0}', /a byte order mark before the JSON text/);
  assertMalformed(`{"x": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`, /nesting deeper than 64/);
  assertMalformed(`{"x": ${"[".repeat(100_000)}`, /nesting deeper than 64/);
  const deepest = `{"x": ${"[".repeat(63)}${"]".repeat(63)}}`;
  assert.equal(parseGateMetrics(deepest, "m").nested, false);
});

Deno.test("parseGateMetrics() reads run_status and refuses a value outside RUN_STATUSES", () => {
  assert.equal(
    parseGateMetrics('{"quarantine_count": 0, "run_status": "interrupted"}', "m").metrics
      .run_status,
    "interrupted",
  );
  assert.equal(
    parseGateMetrics('{"run_status": "failed", "metrics": {"quarantine_count": 0}}', "m")
      .metrics.run_status,
    "failed",
  );
  assert.equal(parseGateMetrics('{"quarantine_count": 0}', "m").metrics.run_status, undefined);
  assertMalformed('{"run_status": "done"}', /run_status must be one of running, completed/);
  assertMalformed('{"run_status": 1}', /run_status must be one of .*, got a number/);
});

Deno.test("readGateMetrics() refuses a BOM that a UTF-8 decoder would drop", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const body = new TextEncoder().encode('{"quarantine_count": 0}');
    await Deno.writeFile(`${dir}/bom.json`, new Uint8Array([0xef, 0xbb, 0xbf, ...body]));
    await assert.rejects(readGateMetrics(`${dir}/bom.json`), /a byte order mark/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readGateMetrics() refuses a FIFO, a device and an oversized file before reading", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const made = await new Deno.Command("mkfifo", { args: [`${dir}/fifo.json`] }).output();
    assert.equal(made.code, 0);
    // No writer ever opens the FIFO: reading it would block forever.
    await assert.rejects(readGateMetrics(`${dir}/fifo.json`), (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "metrics_unreadable");
      assert.match(error.message, /fifo\.json: not a regular file$/);
      return true;
    });
    await assert.rejects(readGateMetrics("/dev/zero"), /\/dev\/zero: not a regular file/);
    await assert.rejects(readGateMetrics(dir), /not a regular file/);
    await Deno.writeTextFile(`${dir}/big.json`, " ".repeat(METRICS_MAX_BYTES + 1));
    await assert.rejects(
      readGateMetrics(`${dir}/big.json`),
      new RegExp(
        `big\\.json: larger than ${METRICS_MAX_BYTES} bytes \\(${METRICS_MAX_BYTES + 1}\\)`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
