import assert from "node:assert/strict";
import { type KvhRun, ROOT, runKvh } from "./_kvh.ts";

const FIXTURES = `${ROOT}tests/gate/fixtures/`;

function kvh(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<KvhRun> {
  return runKvh(args, { env: { NO_COLOR: "", ...env }, cwd });
}

function fixture(name: string): string {
  return `${FIXTURES}${name}.json.txt`;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const STRICT = ["--coverage-min", "99.9", "--unsanitized-max", "0", "--quarantine-max", "0"];

Deno.test("kvh gate answers the Python tool's gate inputs as INDEX.md says", async () => {
  const expected: Record<string, number> = {
    "pass": 0,
    "boundary-equal": 0,
    "nested-metrics": 0,
    "fail-coverage": 2,
    "fail-quarantine": 2,
    "fail-unsanitized": 2,
    "malformed": 1,
    "empty": 1,
  };
  const results = await Promise.all(
    Object.keys(expected).map(async (
      name,
    ) => [name, (await kvh(["gate", fixture(name), ...STRICT])).code]),
  );
  assert.deepEqual(Object.fromEntries(results), expected);
});

Deno.test("kvh gate prints one row per check and the verdict, without colour off a TTY", async () => {
  const run = await kvh(["gate", fixture("fail-quarantine"), "--sanitize-p95-ms-max", "60"]);
  assert.equal(run.code, 2);
  assert.ok(!run.stdout.includes("\x1b["), "no ANSI escapes");
  const lines = run.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^check\s+threshold\s+actual\s+result$/);
  assert.match(lines[1]!, /^coverage_pct\s+>= 99\.9\s+100\s+pass$/);
  assert.match(lines[3]!, /^quarantine_count\s+<= 0\s+1\s+FAIL$/);
  assert.match(lines[4]!, /^sanitize_duration_p95_ms\s+<= 60\s+64\.6\s+FAIL$/);
  assert.equal(lines.at(-1), "verdict: FAIL");
});

Deno.test("kvh gate --json prints the Python-compatible verdict as one document", async () => {
  const run = await kvh(["gate", fixture("fail-coverage"), "--json", "--reuse-rate-max", "0.5"]);
  assert.equal(run.code, 2);
  const verdict = JSON.parse(run.stdout);
  assert.equal(verdict.schema, 1);
  assert.equal(verdict.pass, false);
  assert.deepEqual(verdict.failures, [{
    metric: "coverage_pct",
    actual: 99.5,
    expected_min: 99.9,
  }]);
  assert.deepEqual(verdict.thresholds, {
    coverage_pct_min: 99.9,
    unsanitized_regions_max: 0,
    quarantine_count_max: 0,
    reuse_rate_max: 0.5,
    sanitize_p95_ms_max: null,
  });
  assert.equal(verdict.metrics.total_buffers, 3);
  assert.equal(verdict.checks.length, 4);
  assert.equal(typeof verdict.ts, "number");
});

Deno.test("kvh gate fails a coverage minimum above the measured value", async () => {
  assert.equal((await kvh(["gate", fixture("boundary-equal"), "--coverage-min", "99.96"])).code, 2);
  assert.equal((await kvh(["gate", fixture("pass"), "--coverage-min=100"])).code, 0);
});

Deno.test("kvh gate takes the coverage minimum from KV_COVERAGE_THRESHOLD unless a flag is given", async () => {
  assert.equal(
    (await kvh(["gate", fixture("boundary-equal")], { KV_COVERAGE_THRESHOLD: "99.95" })).code,
    2,
  );
  assert.equal(
    (await kvh(["gate", fixture("boundary-equal"), "--coverage-min", "99"], {
      KV_COVERAGE_THRESHOLD: "99.95",
    }))
      .code,
    0,
  );
  const bad = await kvh(["gate", fixture("pass")], { KV_COVERAGE_THRESHOLD: "high" });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Invalid KV_COVERAGE_THRESHOLD/);
});

Deno.test("kvh gate refuses bad flag values and conflicting p95 aliases", async () => {
  for (
    const args of [
      ["--quarantine-max", "0.5"],
      ["--unsanitized-max", "-1"],
      ["--coverage-min", "abc"],
      ["--p95-max-ms", "5", "--sanitize-p95-ms-max", "6"],
      ["--hmac-key-file", "key"],
      ["--test-report", "report.xml"],
    ]
  ) {
    const run = await kvh(["gate", fixture("pass"), ...args]);
    assert.equal(run.code, 1, args.join(" "));
    assert.match(run.stderr, /^kvh: (Invalid|Conflicting) --/);
  }
});

Deno.test("kvh gate refuses metrics that are not numbers it understands", async () => {
  await withTempDir(async (dir) => {
    const cases: Record<string, string> = {
      "nan": '{"min_coverage_pct": NaN, "unsanitized_regions_count": 0, "quarantine_count": 0}',
      "string":
        '{"min_coverage_pct": "100", "unsanitized_regions_count": 0, "quarantine_count": 0}',
      "negative":
        '{"min_coverage_pct": 100, "unsanitized_regions_count": -1, "quarantine_count": 0}',
      "fraction":
        '{"min_coverage_pct": 100, "unsanitized_regions_count": 0, "quarantine_count": 0.5}',
      "null": '{"min_coverage_pct": 100, "unsanitized_regions_count": 0, "quarantine_count": null}',
      "missing": '{"min_coverage_pct": 100, "unsanitized_regions_count": 0}',
      "array": "[]",
    };
    for (const [name, text] of Object.entries(cases)) {
      await Deno.writeTextFile(`${dir}/${name}.json`, text);
      const run = await kvh(["gate", `${dir}/${name}.json`]);
      assert.equal(run.code, 1, name);
      assert.equal(run.stdout, "", name);
      assert.match(run.stderr, /^kvh: (Malformed metrics|Missing metric)/, name);
    }
    const missing = await kvh(["gate", `${dir}/absent.json`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Cannot read metrics .*absent\.json: not found/);
    const none = await kvh(["gate"]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /Missing metrics file/);
  });
});

Deno.test("kvh gate applies a policy file, and flags override it", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/policy.json`,
      '{"quarantine_count_max": 1, "sanitize_p95_ms_max": 60}',
    );
    const viaPolicy = await kvh([
      "gate",
      fixture("fail-quarantine"),
      "--policy",
      `${dir}/policy.json`,
      "--json",
    ]);
    assert.equal(viaPolicy.code, 2);
    assert.deepEqual(
      JSON.parse(viaPolicy.stdout).failures.map((f: { metric: string }) => f.metric),
      [
        "sanitize_duration_p95_ms",
      ],
    );
    const overridden = await kvh([
      "gate",
      fixture("fail-quarantine"),
      "--policy",
      `${dir}/policy.json`,
      "--p95-max-ms",
      "65",
    ]);
    assert.equal(overridden.code, 0);
  });
});

Deno.test("kvh gate refuses a policy with unknown keys, naming the key", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/policy.json`, '{"coverage_min": 99.9}');
    const run = await kvh(["gate", fixture("pass"), "--policy", `${dir}/policy.json`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Invalid policy .*policy\.json: unknown key "coverage_min"/);
  });
});

Deno.test("kvh gate --out writes the verdict 0600 and creates missing directories", async () => {
  await withTempDir(async (dir) => {
    const run = await kvh(
      ["gate", fixture("fail-unsanitized"), "--out", "forensics/verdict.json"],
      {},
      dir,
    );
    assert.equal(run.code, 2);
    const path = `${dir}/forensics/verdict.json`;
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const verdict = JSON.parse(await Deno.readTextFile(path));
    assert.deepEqual(verdict.failures, [{
      metric: "unsanitized_regions_count",
      actual: 1,
      expected_max: 0,
    }]);
  });
});

Deno.test("kvh gate --require-verified passes a verified log and fails a tampered one", async () => {
  const ok = await kvh([
    "gate",
    fixture("pass"),
    "--require-verified",
    `${FIXTURES}plain/kv_cache.log`,
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(
    ok.stdout,
    /log_verified\s+>= verified\s+verified \(.*plain\/kv_cache\.log\)\s+pass/,
  );
  const tampered = await kvh([
    "gate",
    fixture("pass"),
    "--json",
    "--require-verified",
    `${FIXTURES}tampered-edit/kv_cache.log`,
  ]);
  assert.equal(tampered.code, 2);
  const verdict = JSON.parse(tampered.stdout);
  assert.equal(verdict.failures[0].metric, "log_verified");
  assert.equal(verdict.verification.ok, false);
  assert.equal(verdict.verification.failure.line, 13);
  const text = await kvh([
    "gate",
    fixture("pass"),
    "--require-verified",
    `${FIXTURES}tampered-edit/kv_cache.log`,
  ]);
  assert.match(text.stdout, /^log: hash_mismatch at kv_cache\.log:13: /m);
  const missing = await kvh([
    "gate",
    fixture("pass"),
    "--require-verified",
    `${FIXTURES}absent/kv_cache.log`,
  ]);
  assert.equal(missing.code, 1);
});

Deno.test("kvh gate --require-verified checks MACs with --hmac-key-file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/key`, await Deno.readFile(`${FIXTURES}hmac/secret.txt`), {
      mode: 0o600,
    });
    await Deno.writeTextFile(`${dir}/wrong`, "not-the-key", { mode: 0o600 });
    const log = `${FIXTURES}hmac/kv_cache.log`;
    const good = await kvh([
      "gate",
      fixture("pass"),
      "--json",
      "--require-verified",
      log,
      "--hmac-key-file",
      `${dir}/key`,
    ]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(JSON.parse(good.stdout).verification.mac_checked, true);
    const wrong = await kvh([
      "gate",
      fixture("pass"),
      "--require-verified",
      log,
      "--hmac-key-file",
      `${dir}/wrong`,
    ]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stdout, /mac_mismatch/);
  });
});

Deno.test("kvh gate --require-verified fails a log with MACs and no key unless --chain-only", async () => {
  const log = `${FIXTURES}hmac/kv_cache.log`;
  // No key anywhere: FORENSIC_HMAC_SECRET is unset in the child.
  const unkeyed = await kvh(["gate", fixture("pass"), "--require-verified", log]);
  assert.equal(unkeyed.code, 2, unkeyed.stderr);
  assert.match(unkeyed.stdout, /log_verified\s+>= verified\s+verified .*pass/);
  assert.match(unkeyed.stdout, /log_macs_checked\s+>= checked\s+not checked \(no key\) .*FAIL/);
  assert.match(unkeyed.stdout, /^log: it carries MACs but no key was given .*--chain-only/m);
  const json = await kvh(["gate", fixture("pass"), "--json", "--require-verified", log]);
  const verdict = JSON.parse(json.stdout);
  assert.deepEqual(verdict.failures.map((f: { metric: string }) => f.metric), [
    "log_macs_checked",
  ]);
  assert.equal(verdict.verification.mac_present, true);
  assert.equal(verdict.verification.mac_checked, false);
  const accepted = await kvh(["gate", fixture("pass"), "--require-verified", log, "--chain-only"]);
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.doesNotMatch(accepted.stdout, /log_macs_checked/);
  // A log without MACs needs no key and no flag.
  const plain = await kvh([
    "gate",
    fixture("pass"),
    "--require-verified",
    `${FIXTURES}plain/kv_cache.log`,
  ]);
  assert.equal(plain.code, 0);
  const stray = await kvh(["gate", fixture("pass"), "--chain-only"]);
  assert.equal(stray.code, 1);
  assert.match(stray.stderr, /Invalid --chain-only: it needs --require-verified LOG/);
});

Deno.test("kvh gate --evidence writes a bundle that sha256sum -c verifies", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/report.xml`, "<testsuites/>\n");
    const bundle = `${dir}/evidence`;
    const run = await kvh([
      "gate",
      fixture("pass"),
      "--evidence",
      bundle,
      "--test-report",
      `${dir}/report.xml`,
      "--require-verified",
      `${FIXTURES}plain/kv_cache.log`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const names = [];
    for await (const entry of Deno.readDir(bundle)) names.push(entry.name);
    assert.deepEqual(names.sort(), [
      "MANIFEST.sha256",
      "metrics.json",
      "test-report.xml",
      "verdict.json",
      "verification.json",
    ]);
    assert.deepEqual(
      await Deno.readFile(`${bundle}/metrics.json`),
      await Deno.readFile(fixture("pass")),
    );
    assert.equal(JSON.parse(await Deno.readTextFile(`${bundle}/verification.json`)).ok, true);
    const check = await new Deno.Command("sha256sum", {
      args: ["-c", "MANIFEST.sha256"],
      cwd: bundle,
    }).output();
    assert.ok(check.success);
    assert.equal(new TextDecoder().decode(check.stdout).trim().split("\n").length, 4);
    const again = await kvh(["gate", fixture("pass"), "--evidence", bundle]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /Refusing evidence .*already exists/);
  });
});

Deno.test("kvh gate --evidence records a failing gate too and still exits 2", async () => {
  await withTempDir(async (dir) => {
    const run = await kvh(["gate", fixture("fail-coverage"), "--evidence", `${dir}/e`]);
    assert.equal(run.code, 2);
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/e/verdict.json`)).pass, false);
    const missingReport = await kvh([
      "gate",
      fixture("pass"),
      "--evidence",
      `${dir}/f`,
      "--test-report",
      `${dir}/absent.xml`,
    ]);
    assert.equal(missingReport.code, 1);
    assert.match(missingReport.stderr, /Cannot read --test-report/);
    await assert.rejects(Deno.stat(`${dir}/f`), Deno.errors.NotFound);
  });
});

Deno.test("kvh gate falls back to commander for help and unusual arguments", async () => {
  const help = await kvh(["gate", "--help"]);
  assert.equal(help.code, 0);
  for (
    const flag of [
      "--coverage-min",
      "--sanitize-p95-ms-max",
      "--policy",
      "--evidence",
      "--test-report",
    ]
  ) {
    assert.match(help.stdout, new RegExp(flag));
  }
  assert.match(help.stdout, /python tools\/eviction_checker\.py/);
  const unknown = await kvh(["gate", fixture("pass"), "--bogus"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown option '--bogus'/);
  const viaCommander = await kvh([
    "gate",
    "--json",
    "--quarantine-max",
    "1",
    "--",
    fixture("fail-quarantine"),
  ]);
  assert.equal(viaCommander.code, 0, viaCommander.stderr);
  assert.equal(JSON.parse(viaCommander.stdout).thresholds.quarantine_count_max, 1);
  const failing = await kvh(["gate", "--", fixture("fail-quarantine")]);
  assert.equal(failing.code, 2);
  const twoFiles = await kvh(["gate", fixture("pass"), fixture("pass")]);
  assert.equal(twoFiles.code, 1);
});

interface InfoModule {
  specifier: string;
  dependencies?: { specifier: string; code?: { specifier: string }; isDynamic?: boolean }[];
}

Deno.test("kvh gate loads no npm package, server, GPU or tracer module up front", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${ROOT}cli/main.ts`],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as { modules: InfoModule[] };
  const modules = new Map(info.modules.map((module) => [module.specifier, module]));
  const mainUrl = new URL("cli/main.ts", `file://${ROOT}`).href;
  const gateUrl = new URL("cli/gate.ts", `file://${ROOT}`).href;
  const staticClosure = new Set<string>();
  const visit = (url: string) => {
    if (staticClosure.has(url)) return;
    staticClosure.add(url);
    for (const dependency of modules.get(url)?.dependencies ?? []) {
      const target = dependency.code?.specifier;
      if (target !== undefined && !dependency.isDynamic) visit(target);
    }
  };
  visit(mainUrl);
  visit(gateUrl);
  const loaded = [...staticClosure];
  assert.ok(loaded.includes(gateUrl));
  // node: built-ins are part of the runtime's snapshot; npm packages cost tens of milliseconds.
  assert.deepEqual(loaded.filter((url) => !/^(file|node):/.test(url)), []);
  // lib/metrics/types.ts holds data shapes and the run-status vocabulary, nothing to run.
  assert.deepEqual(
    loaded.filter((url) =>
      /\/(lib\/(server|tracer|sanitize|metrics)|ffi)\//.test(url) &&
      !url.endsWith("/lib/metrics/types.ts")
    ),
    [],
  );
});

Deno.test("kvh gate fails metrics of an interrupted or failed run with exit 2 and says why", async () => {
  await withTempDir(async (dir) => {
    const clean = JSON.parse(await Deno.readTextFile(fixture("pass")));
    for (const status of ["interrupted", "failed"]) {
      await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify({ ...clean, run_status: status }));
      const run = await kvh(["gate", `${dir}/c.json`]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stdout,
        new RegExp(`run_status +completed\\|running\\|stopped +${status} +FAIL`),
      );
      assert.match(
        run.stdout,
        new RegExp(
          `run: the run that wrote .*c\\.json ended ${status}, so its metrics cover only part`,
        ),
      );
    }
    await Deno.writeTextFile(
      `${dir}/c.json`,
      JSON.stringify({ ...clean, run_status: "completed" }),
    );
    assert.equal((await kvh(["gate", `${dir}/c.json`])).code, 0);
  });
});

Deno.test("kvh gate refuses duplicate keys, impossible values and a FIFO with exit 1", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/dup.json`,
      '{"min_coverage_pct": 100, "unsanitized_regions_count": 0, "quarantine_count": 5, "quarantine_count": 0}',
    );
    const dup = await kvh(["gate", `${dir}/dup.json`]);
    assert.equal(dup.code, 1);
    assert.match(
      dup.stderr,
      /kvh: Malformed metrics .*dup\.json: duplicate key "quarantine_count"/,
    );
    await Deno.writeTextFile(
      `${dir}/over.json`,
      '{"min_coverage_pct": 250, "unsanitized_regions_count": 0, "quarantine_count": 0}',
    );
    assert.equal((await kvh(["gate", `${dir}/over.json`])).code, 1);
    assert.equal((await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output()).code, 0);
    const fifo = await kvh(["gate", `${dir}/fifo`]);
    assert.equal(fifo.code, 1);
    assert.match(fifo.stderr, /kvh: Cannot read metrics .*fifo: not a regular file/);
  });
});

Deno.test("kvh gate writes --out and --evidence together or neither", async () => {
  await withTempDir(async (dir) => {
    // The bundle's directory exists: the run fails and the verdict is not written either.
    await Deno.mkdir(`${dir}/taken`);
    await Deno.writeTextFile(`${dir}/taken/x`, "");
    const refused = await kvh([
      "gate",
      fixture("pass"),
      "--out",
      `${dir}/out/verdict.json`,
      "--evidence",
      `${dir}/taken`,
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Refusing evidence .*taken: it already exists/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["taken"]);
    // An unreadable test report: nothing appears.
    const report = await kvh([
      "gate",
      fixture("pass"),
      "--out",
      `${dir}/v2.json`,
      "--evidence",
      `${dir}/e2`,
      "--test-report",
      `${dir}/absent.xml`,
    ]);
    assert.equal(report.code, 1);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["taken"]);
    // Both succeed, missing parents created for each.
    const ok = await kvh([
      "gate",
      fixture("pass"),
      "--out",
      `${dir}/a/b/verdict.json`,
      "--evidence",
      `${dir}/c/d/bundle`,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const verdict = await Deno.readTextFile(`${dir}/a/b/verdict.json`);
    assert.equal(await Deno.readTextFile(`${dir}/c/d/bundle/verdict.json`), verdict);
  });
});

Deno.test("kvh gate refuses thresholds in hex, exponent or out of range with exit 1", async () => {
  for (
    const [args, pattern] of [
      [["--coverage-min", "0x10"], /Invalid --coverage-min: expected a decimal number, got "0x10"/],
      [["--coverage-min", "150"], /Invalid --coverage-min: must be at most 100, got 150/],
      [["--quarantine-max", "1e3"], /Invalid --quarantine-max: expected a decimal number/],
      [["--quarantine-max", "1.5"], /Invalid --quarantine-max: must be a whole number, got 1\.5/],
      [["--p95-max-ms=-1"], /Invalid --p95-max-ms: must not be negative, got -1/],
      [["--p95-max-ms", "5", "--sanitize-p95-ms-max", "6"], /Conflicting --p95-max-ms 5 and/],
    ] as const
  ) {
    const run = await kvh(["gate", fixture("pass"), ...args]);
    assert.equal(run.code, 1, args.join(" "));
    assert.match(run.stderr, pattern);
  }
  const env = await kvh(["gate", fixture("pass")], { KV_COVERAGE_THRESHOLD: "0x10" });
  assert.equal(env.code, 1);
  assert.match(env.stderr, /Invalid KV_COVERAGE_THRESHOLD: expected a decimal number/);
});

Deno.test("kvh trace --coverage-threshold follows the gate's rules: decimal, 0 to 100", async () => {
  for (
    const [value, pattern] of [["0x10", /expected a decimal number/], [
      "150",
      /must be at most 100, got 150/,
    ]]
  ) {
    const run = await kvh(["trace", "--coverage-threshold", value as string, "--requests", "1"]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`Invalid --coverage-threshold: ${(pattern as RegExp).source}`),
    );
  }
});
