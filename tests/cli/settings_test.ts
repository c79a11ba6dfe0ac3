/** Configuration precedence, once (issue 10.4): flag > environment > default, one help format. */
import assert from "node:assert/strict";
import { booleanSetting, numberSetting, setting, textSetting, withEnv } from "../../cli/_common.ts";
import { KvhError } from "../../lib/errors.ts";
import { runKvh } from "./_kvh.ts";

const VARIABLE = "KVH_TEST_SETTING";

function withVariable(value: string | undefined, fn: () => void): void {
  const before = Deno.env.get(VARIABLE);
  if (value === undefined) Deno.env.delete(VARIABLE);
  else Deno.env.set(VARIABLE, value);
  try {
    fn();
  } finally {
    if (before === undefined) Deno.env.delete(VARIABLE);
    else Deno.env.set(VARIABLE, before);
  }
}

function assertInvalid(fn: () => unknown, code: string, pattern: RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (thrown) {
    error = thrown;
  }
  assert.ok(error instanceof KvhError, "expected a KvhError");
  assert.deepEqual([error.code, error.exitCode], [code, 1]);
  assert.match(error.message, pattern);
}

Deno.test("setting() takes the flag over the variable, the variable over the default", () => {
  withVariable("from-env", () => {
    assert.equal(setting("from-flag", VARIABLE, textSetting), "from-flag");
    assert.equal(setting(undefined, VARIABLE, textSetting), "from-env");
  });
  withVariable(undefined, () => assert.equal(setting(undefined, VARIABLE, textSetting), undefined));
  // An empty variable is unset, as in the Python tool.
  withVariable("", () => assert.equal(setting(undefined, VARIABLE, textSetting), undefined));
});

Deno.test("setting() parses the variable and names it in the error", () => {
  withVariable("abc", () => {
    assertInvalid(
      () => setting(undefined, VARIABLE, numberSetting()),
      "env_invalid",
      /^Invalid KVH_TEST_SETTING: expected a decimal number, got "abc"$/,
    );
  });
});

Deno.test("numberSetting() takes decimals only, within bounds, for flags and variables alike", () => {
  const count = numberSetting({ integer: true, min: 0, max: 10 });
  assert.equal(count("7", "--n"), 7);
  assert.equal(numberSetting()("-2.5", "--n"), -2.5);
  for (const text of ["0x10", "1e3", " 5", "", "Infinity", "5abc", ".5", "5.", "+1"]) {
    assertInvalid(() => count(text, "--n"), "flag_invalid", /^Invalid --n: expected a decimal/);
  }
  assertInvalid(
    () => count("1.5", "N"),
    "env_invalid",
    /^Invalid N: must be a whole number, got 1.5$/,
  );
  assertInvalid(() => count("-1", "--n"), "flag_invalid", /must not be negative, got -1$/);
  assertInvalid(() => count("11", "--n"), "flag_invalid", /must be at most 10, got 11$/);
});

Deno.test("booleanSetting() accepts only the documented spellings", () => {
  for (const text of ["1", "true", "YES", "on", " True "]) {
    assert.equal(booleanSetting(text, "B"), true);
  }
  for (const text of ["0", "false", "No", "OFF"]) assert.equal(booleanSetting(text, "B"), false);
  for (const text of ["maybe", "2", "y", "enabled"]) {
    assertInvalid(() => booleanSetting(text, "B"), "env_invalid", /^Invalid B: expected one of/);
  }
});

Deno.test("withEnv() names the variable and the default the same way for every option", () => {
  assert.equal(
    withEnv("log directory", "LOG_DIR", "forensics"),
    "log directory (env LOG_DIR; default forensics)",
  );
  assert.equal(withEnv("report file", "VERDICT_OUT"), "report file (env VERDICT_OUT)");
});

Deno.test("kvh trace refuses a boolean variable it cannot read instead of treating it as false", async () => {
  const run = await runKvh(["trace", "--requests", "1", "--log-dir", "/nonexistent"], {
    env: { KV_DOUBLE_PASS_DEFAULT: "enabled" },
  });
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /^kvh: Invalid KV_DOUBLE_PASS_DEFAULT: expected one of 1, true, yes, on, 0, false, no, off, got "enabled"$/m,
  );
});

Deno.test("kvh trace and serve-metrics refuse a hexadecimal or out-of-range variable, naming it", async () => {
  const trace = await runKvh(["trace", "--requests", "1", "--log-dir", "/nonexistent"], {
    env: { KV_COVERAGE_THRESHOLD: "0x10" },
  });
  assert.equal(trace.code, 1);
  assert.match(trace.stderr, /^kvh: Invalid KV_COVERAGE_THRESHOLD: expected a decimal number/m);
  const serve = await runKvh(["serve-metrics"], { env: { METRICS_PORT: "70000" } });
  assert.equal(serve.code, 1);
  assert.match(serve.stderr, /^kvh: Invalid METRICS_PORT: must be at most 65535, got 70000$/m);
});

const VARIABLES = [
  "FORENSIC_HMAC_SECRET",
  "KV_COVERAGE_THRESHOLD",
  "KV_DOUBLE_PASS_DEFAULT",
  "KV_VERIFY_SAMPLES_DEFAULT",
  "KV_DEFAULT_MAX_REUSE",
  "KV_DEFAULT_TTL_SEC",
  "METRICS_FILE",
  "METRICS_PORT",
  "METRICS_BIND",
  "LOG_DIR",
  "LOG_FILE",
  "LOG_MAX_BYTES",
  "VERDICT_OUT",
  "RETENTION_DAYS",
  "MAX_ROTATED",
  "ARCHIVE_DIR",
];

Deno.test("kvh --help of trace, prune, verify and serve-metrics names each variable as (env NAME…)", async () => {
  for (const command of ["trace", "prune", "verify", "serve-metrics"]) {
    const run = await runKvh([command, "--help"]);
    assert.equal(run.code, 0, run.stderr);
    const help = run.stdout.replace(/\s+/g, " ");
    let named = 0;
    for (const variable of VARIABLES) {
      const mentions = help.split(new RegExp(`\\b${variable}\\b`)).length - 1;
      const uniform = help.split(new RegExp(`\\(env ${variable}[;)]`)).length - 1;
      assert.equal(uniform, mentions, `${command} --help mentions ${variable} otherwise`);
      named += uniform;
    }
    assert.ok(named > 0, `${command} --help names no variable`);
  }
});
