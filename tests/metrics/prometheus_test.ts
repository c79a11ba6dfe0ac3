import assert from "node:assert/strict";
import {
  MetricsCollector,
  percentile,
  RUN_STATUSES,
  toPrometheusText,
} from "../../lib/metrics/mod.ts";
import type { TracerStats } from "../../lib/tracer/mod.ts";

const STATS: TracerStats = {
  totalBuffers: 3,
  activeBuffers: 1,
  unsanitizedBuffers: 1,
  quarantinedBuffers: 1,
  freedBuffers: 1,
};

function sample(): MetricsCollector {
  const metrics = new MetricsCollector({ thresholdPct: 99.9 });
  for (let i = 0; i < 3; i++) metrics.recordAllocation();
  metrics.recordScrub({ coveragePct: 100, verified: true, durationMs: 0.5, scrubbedBytes: 4096 });
  metrics.recordScrub({ coveragePct: 99.95, verified: true, durationMs: 3, scrubbedBytes: 8192 });
  metrics.recordScrub({ coveragePct: 100, verified: true, durationMs: 20_000, scrubbedBytes: 1 });
  metrics.recordFree();
  metrics.recordReuse();
  metrics.recordQuarantine("ttl_expired");
  metrics.recordPolicyViolation("ttl");
  metrics.recordAuditFailure(true);
  metrics.recordAuditFailure(false);
  metrics.recordLeak();
  metrics.recordAnomaly();
  return metrics;
}

const PYTHON_KEYS = Object.keys(
  JSON.parse(
    await Deno.readTextFile(
      new URL("../fixtures/python-tool/plain/coverage.json", import.meta.url),
    )
      .catch(() => "{}"),
  ),
);

Deno.test("MetricsCollector.snapshot() keeps every key of the Python tool's coverage.json", () => {
  const snapshot = sample().snapshot(STATS);
  const expected = PYTHON_KEYS.length > 0 ? PYTHON_KEYS : [
    "total_buffers",
    "active_buffers",
    "unsanitized_regions_count",
    "quarantine_count",
    "min_coverage_pct",
    "avg_coverage_pct",
    "threshold_pct",
    "sanitize_duration_p50_ms",
    "sanitize_duration_p95_ms",
    "allocations",
    "freed_total",
    "reuse_total",
    "reuse_rate",
  ];
  for (const key of expected) assert.ok(key in snapshot, `missing ${key}`);
  assert.deepEqual(Object.keys(snapshot).slice(0, 13), expected);
  assert.equal(snapshot.min_coverage_pct, 99.95);
  assert.equal(snapshot.sanitize_duration_p50_ms, 3);
  assert.equal(snapshot.reuse_rate, 1 / 3);
  assert.equal(snapshot.quarantine_count, 1);
  assert.equal(snapshot.scrubbed_bytes_total, 12289);
  assert.equal(snapshot.sanitize_duration_seconds.count, 3);
});

Deno.test("MetricsCollector.snapshot() counts unverified scrubs as 0 coverage", () => {
  const metrics = new MetricsCollector({ thresholdPct: 99.9, verifyMode: "none" });
  metrics.recordScrub({ coveragePct: 0, verified: false, durationMs: 1, scrubbedBytes: 10 });
  const snapshot = metrics.snapshot(STATS);
  assert.equal(snapshot.coverage_verified, false);
  assert.equal(snapshot.min_coverage_pct, 0);
  assert.match(toPrometheusText(snapshot), /^kvh_coverage_min_ratio 0$/m);
  const empty = new MetricsCollector({ thresholdPct: 99.9 }).snapshot(STATS);
  assert.equal(empty.min_coverage_pct, 0);
  assert.equal(empty.reuse_rate, 0);
  assert.equal(empty.sanitize_duration_p95_ms, 0);
});

Deno.test("toPrometheusText() uses the agreed names and units", () => {
  const text = toPrometheusText(sample().snapshot(STATS));
  for (
    const name of [
      "kvh_coverage_min_ratio 0.9995",
      "kvh_coverage_avg_ratio",
      "kvh_coverage_threshold_ratio 0.999",
      "kvh_unsanitized_buffers 1",
      "kvh_quarantined_buffers 1",
      "kvh_active_buffers 1",
      "kvh_reuse_rate",
      "kvh_sanitize_duration_p95_seconds",
      "kvh_sanitize_duration_p50_seconds 0.003",
      "kvh_allocations_total 3",
      "kvh_frees_total 1",
      "kvh_reuses_total 1",
      'kvh_quarantines_total{reason="ttl_expired"} 1',
      'kvh_policy_violations_total{policy="ttl"} 1',
      "kvh_scrubbed_bytes_total 12289",
      "kvh_leaks_detected_total 1",
      "kvh_audit_emit_failures_total 2",
      "kvh_audit_critical_emit_failures_total 1",
      "kvh_anomalies_total 1",
      'kvh_sanitize_duration_seconds_bucket{le="+Inf"} 3',
      "kvh_sanitize_duration_seconds_count 3",
    ]
  ) {
    assert.ok(text.includes(`\n${name}`) || text.startsWith(name), `missing ${name}`);
  }
  assert.ok(text.endsWith("\n"));
});

const promtool = await Deno.stat("/usr/bin/promtool").then(() => "/usr/bin/promtool").catch(() =>
  undefined
);

Deno.test({
  name: "toPrometheusText() output passes promtool check metrics",
  ignore: promtool === undefined, // promtool comes with the Debian package prometheus (.ci/run)
  async fn() {
    for (
      const snapshot of [
        sample().snapshot(STATS),
        new MetricsCollector({ thresholdPct: 50 }).snapshot(STATS),
      ]
    ) {
      const child = new Deno.Command(promtool!, {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(toPrometheusText(snapshot)));
      await writer.close();
      const { code, stdout, stderr } = await child.output();
      const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      assert.equal(code, 0, output);
      assert.equal(output.trim(), "");
    }
  },
});
if (promtool === undefined) console.error("promtool test skipped: /usr/bin/promtool is absent");

Deno.test("percentile() interpolates like numpy and rejects bad percentiles", () => {
  assert.equal(percentile([], 50), 0);
  assert.equal(percentile([7], 95), 7);
  assert.equal(percentile([1, 2, 3, 4, 5], 95), 4.8);
  assert.throws(() => percentile([1], 101), RangeError);
});

Deno.test("toPrometheusText() reports the run status as a state set matching the JSON", () => {
  for (const status of RUN_STATUSES) {
    const snapshot = sample().snapshot(STATS, status);
    assert.equal(snapshot.run_status, status);
    const lines = toPrometheusText(snapshot).split("\n").filter((l) =>
      l.startsWith("kvh_run_status{")
    );
    assert.deepEqual(
      lines,
      RUN_STATUSES.map((s) => `kvh_run_status{status="${s}"} ${s === status ? 1 : 0}`),
    );
  }
  assert.equal(sample().snapshot(STATS).run_status, "running");
});
