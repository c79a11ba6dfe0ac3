import assert from "node:assert/strict";
import fc from "fast-check";
import {
  MetricsCollector,
  percentile,
  RUN_STATUSES,
  toPrometheusText,
} from "../../lib/metrics/mod.ts";
import { escapeLabelValue, writePrometheusText } from "../../lib/metrics/prometheus.ts";
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

/** Runs `promtool check metrics` on `text`; fails the test on any complaint. */
async function assertPromtoolClean(text: string): Promise<void> {
  const child = new Deno.Command(promtool!, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, output);
  assert.equal(output.trim(), "");
}

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
      await assertPromtoolClean(toPrometheusText(snapshot));
    }
  },
});

Deno.test({
  name: "writePrometheusText() output with hostile label values passes promtool check metrics",
  ignore: promtool === undefined,
  async fn() {
    await assertPromtoolClean(writePrometheusText([{
      name: "kvh_quarantines_total",
      type: "counter",
      help: "Buffers quarantined, by reason \\ with\nodd help.",
      samples: HOSTILE_LABEL_VALUES.map((reason, i) => ({ labels: { reason }, value: i })),
    }]));
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

/** Label values that break a writer that does not escape. */
const HOSTILE_LABEL_VALUES = [
  'quote " inside',
  "back\\slash",
  "line\nfeed",
  '\\"\n\\n',
  "",
  "non-ASCII: é 漢字 🦀",
  "} kvh_injected 1\n# TYPE x gauge",
];

/** Reads an escaped label value back as the Prometheus text parser does. */
function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, ch) => ch === "n" ? "\n" : ch);
}

Deno.test("escapeLabelValue() escapes backslash, quote and line feed, and nothing else", () => {
  assert.equal(escapeLabelValue('a"b'), 'a\\"b');
  assert.equal(escapeLabelValue("a\\b"), "a\\\\b");
  assert.equal(escapeLabelValue("a\nb"), "a\\nb");
  assert.equal(escapeLabelValue("é 漢字 🦀\t"), "é 漢字 🦀\t");
  fc.assert(
    fc.property(
      // The characters that matter, mixed with ordinary and non-ASCII ones (unit "binary" is
      // slow to generate).
      fc.array(fc.constantFrom("\\", '"', "\n", "n", "\r", "a", "é", "漢", "🦀", "{", "}", "="))
        .map((chars) => chars.join("")),
      (value) => {
        const escaped = escapeLabelValue(value);
        assert.ok(!escaped.includes("\n"));
        for (let i = 0; i < escaped.length; i++) {
          if (escaped[i] === "\\") i++;
          else assert.notEqual(escaped[i], '"', "an unescaped quote");
        }
        assert.equal(unescape(escaped), value);
      },
    ),
    { seed: 77, numRuns: 300 },
  );
});

Deno.test("writePrometheusText() keeps every hostile label value on its own sample line", () => {
  const text = writePrometheusText([{
    name: "kvh_quarantines_total",
    type: "counter",
    help: "Help with a backslash \\ and\na line feed.",
    samples: HOSTILE_LABEL_VALUES.map((reason, i) => ({
      labels: { reason, other: "x" },
      value: i,
    })),
  }]);
  const lines = text.split("\n");
  assert.equal(lines.at(-1), "");
  assert.equal(lines.length, 2 + HOSTILE_LABEL_VALUES.length + 1);
  assert.equal(
    lines[0],
    "# HELP kvh_quarantines_total Help with a backslash \\\\ and\\na line feed.",
  );
  assert.equal(lines[1], "# TYPE kvh_quarantines_total counter");
  HOSTILE_LABEL_VALUES.forEach((reason, i) => {
    const match = /^kvh_quarantines_total\{reason="((?:[^"\\]|\\.)*)",other="x"\} (\d+)$/.exec(
      lines[2 + i]!,
    );
    assert.ok(match, lines[2 + i]);
    assert.equal(unescape(match[1]!), reason);
    assert.equal(Number(match[2]), i);
  });
});

Deno.test("writePrometheusText() writes NaN and infinities and refuses bad names", () => {
  const text = writePrometheusText([{
    name: "kvh_x",
    type: "gauge",
    help: "x",
    samples: [{ value: NaN }, { value: Infinity, labels: { a: "1" } }, {
      value: -Infinity,
      suffix: "_sum",
    }],
  }]);
  assert.equal(
    text,
    '# HELP kvh_x x\n# TYPE kvh_x gauge\nkvh_x NaN\nkvh_x{a="1"} +Inf\nkvh_x_sum -Inf\n',
  );
  assert.throws(
    () => writePrometheusText([{ name: "kvh x", type: "gauge", help: "", samples: [] }]),
    TypeError,
  );
  assert.throws(
    () =>
      writePrometheusText([{
        name: "kvh_x",
        type: "gauge",
        help: "",
        samples: [{ labels: { "a-b": "1" }, value: 1 }],
      }]),
    TypeError,
  );
});
