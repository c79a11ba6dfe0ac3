import assert from "node:assert/strict";
import { verifyLog } from "../../lib/forensic/mod.ts";
import { waitFor } from "../e2e/_harness.ts";
import { kvhRunArgs } from "./_kvh.ts";

async function kvh(
  args: string[],
  options: { cwd: string; stdin?: string; env?: Record<string, string> },
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...kvhRunArgs(), ...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  return {
    code,
    stdout: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr),
  };
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A valid workload request. */
const REQUEST = {
  tenant_id: "acme",
  request_id: "r",
  model_id: "m",
  tokens: 16,
  layers: 2,
  kv_heads: 2,
  head_dim: 64,
  dtype: "float16",
};

async function readMetrics(dir: string) {
  return {
    json: JSON.parse(await Deno.readTextFile(`${dir}/coverage.json`)),
    prom: await Deno.readTextFile(`${dir}/metrics.prom`),
  };
}

const promtool = await Deno.stat("/usr/bin/promtool").then(() => true).catch(() => false);

Deno.test("kvh trace with no arguments writes verified evidence with zero quarantines", async () => {
  await withDir(async (dir) => {
    const { code, stdout, stderr } = await kvh(["trace", "--requests", "120"], { cwd: dir });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^requests\s+120 \(120 completed, 0 failed/m);
    assert.match(stdout, /^quarantines\s+0$/m);
    assert.match(stderr, /kvh trace: 120\/120 requests/);
    const report = await verifyLog(`${dir}/forensics/kv_cache.log`);
    assert.equal(report.ok, true, JSON.stringify(report.failure));
    assert.ok(report.records > 400);
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/forensics/coverage.json`));
    assert.equal(metrics.min_coverage_pct, 100);
    assert.equal(metrics.unsanitized_regions_count, 0);
    assert.equal(metrics.quarantine_count, 0);
    assert.equal(typeof metrics.sanitize_duration_p95_ms, "number");
    assert.ok(metrics.reuse_rate > 1);
    const prom = await Deno.readTextFile(`${dir}/forensics/metrics.prom`);
    assert.match(prom, /^kvh_coverage_min_ratio 1$/m);
    if (promtool) {
      const check = await new Deno.Command("promtool", {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = check.stdin.getWriter();
      await writer.write(new TextEncoder().encode(prom));
      await writer.close();
      assert.equal((await check.output()).code, 0);
    }
    const log = await Deno.readTextFile(`${dir}/forensics/kv_cache.log`);
    assert.ok(!log.includes("tenant-01/req-"), "the log must not hold buffer contents");
  });
});

Deno.test("kvh trace --max-reuse 0 and --ttl-sec 0 make quarantines appear and exit 0", async () => {
  await withDir(async (dir) => {
    const reuse = await kvh(["trace", "--requests", "30", "--max-reuse", "0", "--json"], {
      cwd: dir,
    });
    assert.equal(reuse.code, 0, reuse.stderr);
    const doc = JSON.parse(reuse.stdout);
    assert.ok(doc.metrics.quarantines_by_reason.reuse_limit_exceeded > 0);
    assert.ok(doc.metrics.quarantine_count > 0);
    const ttl = await kvh(["trace", "--requests", "10", "--log-dir", "t"], {
      cwd: dir,
      env: { KV_DEFAULT_TTL_SEC: "0" },
    });
    assert.equal(ttl.code, 0, ttl.stderr);
    assert.match(ttl.stdout, /quarantines\s+10 \(ttl_expired 10\)/);
    assert.equal((await verifyLog(`${dir}/t/kv_cache.log`)).ok, true);
  });
});

Deno.test("kvh trace --verify none reports coverage as unverified 0", async () => {
  await withDir(async (dir) => {
    const { code, stdout } = await kvh([
      "trace",
      "--requests",
      "5",
      "--verify",
      "none",
      "--metrics-json",
      "m.json",
    ], { cwd: dir });
    assert.equal(code, 0);
    assert.match(stdout, /unverified/);
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/m.json`));
    assert.equal(metrics.min_coverage_pct, 0);
    assert.equal(metrics.coverage_verified, false);
  });
});

Deno.test("kvh trace --workload replays JSONL and names the bad line, leaving a verifiable log", async () => {
  await withDir(async (dir) => {
    const good = { ...REQUEST, request_id: "r1" };
    const lines = [good, { ...good, tenant_id: "globex", request_id: "r2" }].map((r) =>
      JSON.stringify(r)
    );
    await Deno.writeTextFile(`${dir}/w.jsonl`, `${lines.join("\n")}\n{"tenant_id": \n`);
    const bad = await kvh(["trace", "--workload", "w.jsonl"], { cwd: dir });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Invalid workload w\.jsonl:3: malformed JSON/);
    const report = await verifyLog(`${dir}/forensics/kv_cache.log`);
    assert.equal(report.ok, true);
    assert.ok(report.records >= 8);
    const failed = await readMetrics(`${dir}/forensics`);
    assert.equal(failed.json.run_status, "failed");
    assert.equal(failed.json.freed_total, 2, "the two good requests are counted");
    assert.match(failed.prom, /^kvh_run_status\{status="failed"\} 1$/m);
    const piped = await kvh(["trace", "--workload", "-", "--log-dir", "p"], {
      cwd: dir,
      stdin: lines.join("\n"),
    });
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /requests\s+2 \(2 completed/);
    const missing = await kvh(["trace", "--workload", "nope.jsonl", "--log-dir", "q"], {
      cwd: dir,
    });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Cannot read --workload nope\.jsonl: not found/);
  });
});

Deno.test("kvh trace --workload F --log-dir D [--json] (run without commander) runs as the full parser's run does", async () => {
  await withDir(async (dir) => {
    const lines = ["acme", "globex", "acme"].map((tenant_id, i) =>
      JSON.stringify({ ...REQUEST, tenant_id, request_id: `r${i}` })
    );
    await Deno.writeTextFile(`${dir}/w.jsonl`, lines.join("\n") + "\n");
    // `--device cpu` is the default, but only the commander tree takes it.
    const runs = [
      ["--workload", "w.jsonl", "--log-dir", "fast", "--json"],
      ["--device", "cpu", "--workload", "w.jsonl", "--log-dir", "full", "--json"],
    ];
    const [fast, full] = await Promise.all(runs.map(async (args) => {
      const run = await kvh(["trace", ...args], { cwd: dir });
      assert.equal(run.code, 0, run.stderr);
      const { summary, device, head, files, metrics } = JSON.parse(run.stdout);
      const logDir = args[args.indexOf("--log-dir") + 1]!;
      assert.equal((await verifyLog(`${dir}/${files.log}`)).records, head.seq + 1);
      return {
        summary: { ...summary, elapsedMs: 0 },
        device,
        seq: head.seq,
        files: JSON.stringify(files).replaceAll(logDir, "D"),
        metrics: Object.fromEntries(
          Object.entries(metrics).filter(([key]) => !key.startsWith("sanitize_duration")),
        ),
      };
    }));
    assert.deepEqual(fast, full);
    const text = await kvh(["trace", "--workload", "w.jsonl", "--log-dir", "text"], { cwd: dir });
    assert.match(text.stdout, /requests\s+3 \(3 completed/);
    // A flag it does not know, or a value that looks like a flag, goes to commander's usage error.
    const usage = await kvh(["trace", "--workload", "--log-dir", "x"], { cwd: dir });
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /^kvh: Invalid arguments: /);
  });
});

Deno.test("kvh trace rejects bad flags and environment values with exit 1", async () => {
  await withDir(async (dir) => {
    assert.equal((await kvh(["trace", "--requests", "0"], { cwd: dir })).code, 1);
    assert.equal((await kvh(["trace", "--verify", "maybe"], { cwd: dir })).code, 1);
    assert.equal((await kvh(["trace", "--coverage-threshold", "101"], { cwd: dir })).code, 1);
    const env = await kvh(["trace"], { cwd: dir, env: { KV_DEFAULT_MAX_REUSE: "lots" } });
    assert.equal(env.code, 1);
    assert.match(env.stderr, /Invalid KV_DEFAULT_MAX_REUSE/);
    const samples = await kvh(["trace"], { cwd: dir, env: { KV_VERIFY_SAMPLES_DEFAULT: "0.5" } });
    assert.equal(samples.code, 1);
  });
});

Deno.test("kvh trace honours sample verification, double pass and an HMAC key", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/key`, "secret\n", { mode: 0o600 });
    const { code, stderr } = await kvh(
      [
        "trace",
        "--requests",
        "8",
        "--verify",
        "sample",
        "--hmac-key-file",
        "key",
        "--concurrency",
        "4",
      ],
      { cwd: dir, env: { KV_DOUBLE_PASS_DEFAULT: "yes", KV_VERIFY_SAMPLES_DEFAULT: "64" } },
    );
    assert.equal(code, 0, stderr);
    const report = await verifyLog(`${dir}/forensics/kv_cache.log`, {
      hmacKey: new TextEncoder().encode("secret"),
    });
    assert.equal(report.ok, true);
    assert.equal(report.mac_checked, true);
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/forensics/coverage.json`));
    assert.equal(metrics.verify_mode, "sample");
  });
});

for (const [signal, exitCode] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  Deno.test(`kvh trace on ${signal} flushes the log, marks the metrics interrupted and exits ${exitCode}`, async () => {
    await withDir(async (dir) => {
      const completed = await kvh(["trace", "--requests", "4"], { cwd: dir });
      assert.equal(completed.code, 0, completed.stderr);
      assert.equal((await readMetrics(`${dir}/forensics`)).json.run_status, "completed");
      // A workload whose producer sends three requests and then keeps the pipe open: the run
      // is blocked on its next line when the signal comes.
      const child = new Deno.Command(Deno.execPath(), {
        args: [...kvhRunArgs(), "trace", "--workload", "-"],
        cwd: dir,
        env: { NO_COLOR: "1" },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      const lines = [1, 2, 3].map((i) => JSON.stringify({ ...REQUEST, request_id: `r${i}` }));
      await writer.write(new TextEncoder().encode(lines.join("\n") + "\n"));
      const log = `${dir}/forensics/kv_cache.log`;
      const before = (await Deno.readTextFile(log)).split("\n").length;
      // Each request logs allocate/reuse, in_use, sanitize and free: wait for all twelve.
      await waitFor("twelve records", async () => {
        const records = (await Deno.readTextFile(log)).split("\n").length;
        return records >= before + 12 ? records : undefined;
      });
      child.kill(signal);
      const { code, signal: killedBy, stderr } = await child.output();
      await writer.close().catch(() => {});
      assert.equal(killedBy, null, "kvh must exit by itself, not die of the signal");
      assert.equal(code, exitCode, new TextDecoder().decode(stderr));
      assert.match(new TextDecoder().decode(stderr), new RegExp(`Interrupted.*after ${signal}`));
      const verify = await kvh(["verify", "forensics/kv_cache.log"], { cwd: dir });
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      const metrics = await readMetrics(`${dir}/forensics`);
      assert.equal(metrics.json.run_status, "interrupted");
      assert.equal(metrics.json.freed_total, 3);
      assert.match(metrics.prom, /^kvh_run_status\{status="interrupted"\} 1$/m);
      assert.match(metrics.prom, /^kvh_run_status\{status="completed"\} 0$/m);
      const gate = await kvh(["gate", "forensics/coverage.json"], { cwd: dir });
      assert.equal(gate.code, 2, "the gate fails an interrupted run's metrics");
    });
  });
}

Deno.test("kvh trace on a device that cannot be opened replaces earlier metrics with failed ones", async () => {
  await withDir(async (dir) => {
    const completed = await kvh(["trace", "--requests", "4"], { cwd: dir });
    assert.equal(completed.code, 0, completed.stderr);
    const failed = await kvh(["trace", "--device", "cuda"], {
      cwd: dir,
      env: { KVH_CUDA_LIB: `${dir}/missing.so` },
    });
    assert.equal(failed.code, 1);
    const metrics = await readMetrics(`${dir}/forensics`);
    assert.equal(metrics.json.run_status, "failed");
    assert.equal(metrics.json.total_buffers, 0);
    assert.match(metrics.prom, /^kvh_run_status\{status="failed"\} 1$/m);
  });
});

Deno.test("kvh trace --max-log-bytes and LOG_MAX_BYTES rotate the log at the size given", async () => {
  await withDir(async (dir) => {
    for (
      const [logDir, args, env] of [
        ["flag", ["--max-log-bytes", "4096"], {}],
        ["env", [], { LOG_MAX_BYTES: "4096" }],
      ] as const
    ) {
      const run = await kvh(["trace", "--requests", "20", "--log-dir", logDir, ...args], {
        cwd: dir,
        env,
      });
      assert.equal(run.code, 0, run.stderr);
      const files = [...Deno.readDirSync(`${dir}/${logDir}`)].filter((f) =>
        f.name.startsWith("kv_cache") && f.name.endsWith(".log")
      );
      assert.ok(files.length >= 5, `only ${files.length} log files`);
      for (const file of files) {
        assert.ok(Deno.statSync(`${dir}/${logDir}/${file.name}`).size <= 4096, file.name);
      }
      const report = await verifyLog(`${dir}/${logDir}/kv_cache.log`);
      assert.equal(report.ok, true, JSON.stringify(report.failure));
      assert.equal(report.files, files.length);
    }
    for (const bad of ["0x1000", "1e4", "4096.0", "100"]) {
      const flag = await kvh(["trace", "--max-log-bytes", bad, "--log-dir", "bad"], { cwd: dir });
      assert.equal(flag.code, 1, bad);
      assert.match(flag.stderr, /Invalid --max-log-bytes: expected a decimal byte count/);
    }
    const env = await kvh(["trace", "--log-dir", "bad"], {
      cwd: dir,
      env: { LOG_MAX_BYTES: "64MiB" },
    });
    assert.equal(env.code, 1);
    assert.match(env.stderr, /Invalid LOG_MAX_BYTES: expected a decimal byte count/);
    assert.equal(
      await Deno.stat(`${dir}/bad`).catch(() => null),
      null,
      "a refused run writes nothing",
    );
  });
});

Deno.test("kvh trace refuses flags that the run would ignore, before writing anything", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/w.jsonl`, JSON.stringify(REQUEST) + "\n");
    for (
      const [args, message] of [
        [
          ["--workload", "w.jsonl", "--requests", "5"],
          /Invalid --requests: it sizes the synthetic/,
        ],
        [
          ["--workload", "w.jsonl", "--seed", "2"],
          /Invalid --seed: .* cannot be used with --workload/,
        ],
        [["--verify", "none", "--verify-samples", "64"], /--verify sample only, got --verify none/],
        [["--verify-samples", "64"], /Invalid --verify-samples: .* got --verify full/],
      ] as const
    ) {
      const run = await kvh(["trace", ...args], { cwd: dir });
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, message);
    }
    assert.equal(await Deno.stat(`${dir}/forensics`).catch(() => null), null);
  });
});

Deno.test("kvh trace says on stderr that it recovered a torn tail", async () => {
  await withDir(async (dir) => {
    assert.equal((await kvh(["trace", "--requests", "2"], { cwd: dir })).code, 0);
    await Deno.writeTextFile(`${dir}/forensics/kv_cache.log`, '{"v":2,"seq":', { append: true });
    const { code, stderr } = await kvh(["trace", "--requests", "2"], { cwd: dir });
    assert.equal(code, 0, stderr);
    assert.match(stderr, /kvh: Recovered a torn tail of 13 bytes at the end of /);
    assert.equal((await verifyLog(`${dir}/forensics/kv_cache.log`)).ok, true);
  });
});

Deno.test("kvh trace takes coverage thresholds as gate does: decimal, 0 to 100", async () => {
  await withDir(async (dir) => {
    for (
      const [text, message] of [["0x10", /expected a decimal number/], [
        "150",
        /at most 100/,
      ]] as const
    ) {
      const flag = await kvh(["trace", "--coverage-threshold", text], { cwd: dir });
      assert.equal(flag.code, 1, text);
      assert.match(flag.stderr, /Invalid --coverage-threshold: /);
      assert.match(flag.stderr, message);
      const env = await kvh(["trace"], {
        cwd: dir,
        env: { KV_COVERAGE_THRESHOLD: text },
      });
      assert.equal(env.code, 1, text);
      assert.match(env.stderr, /Invalid KV_COVERAGE_THRESHOLD: /);
    }
    assert.equal(await Deno.stat(`${dir}/forensics`).catch(() => null), null);
    const ok = await kvh(["trace", "--requests", "2", "--coverage-threshold", "99.5", "--json"], {
      cwd: dir,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).metrics.threshold_pct, 99.5);
  });
});

Deno.test("kvh trace reports a failed run's own error when its metrics cannot be written either", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/afile`, "x");
    await Deno.writeTextFile(`${dir}/w.jsonl`, '{"tenant_id":\n');
    const run = await kvh(["trace", "--workload", "w.jsonl", "--metrics-json", "afile/m.json"], {
      cwd: dir,
    });
    assert.equal(run.code, 1);
    const lines = run.stderr.trim().split("\n");
    assert.match(lines[0]!, /^kvh: Cannot write --metrics-json afile\/m\.json: /);
    assert.match(lines.at(-1)!, /^kvh: Invalid workload w\.jsonl:1: malformed JSON$/);
  });
});
