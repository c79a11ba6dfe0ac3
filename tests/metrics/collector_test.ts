import assert from "node:assert/strict";
import { MetricsCollector } from "../../lib/metrics/mod.ts";

const STATS = {
  totalBuffers: 0,
  activeBuffers: 0,
  unsanitizedBuffers: 0,
  quarantinedBuffers: 0,
  freedBuffers: 0,
};

function scrub(metrics: MetricsCollector, durationMs: number): void {
  metrics.recordScrub({ coveragePct: 100, verified: true, durationMs, scrubbedBytes: 1 });
}

Deno.test("with durationSamples, the p50/p95 follow the whole run, not its first scrubs", () => {
  // The sidecar daemon keeps a bounded sample: a run whose scrubs slow down after the first
  // thousand must show the slow ones.
  const metrics = new MetricsCollector({ thresholdPct: 99.9, durationSamples: 1000 });
  for (let i = 0; i < 1000; i++) scrub(metrics, 1);
  for (let i = 0; i < 99_000; i++) scrub(metrics, 9);
  const snapshot = metrics.snapshot(STATS);
  assert.equal(snapshot.sanitize_duration_p50_ms, 9);
  assert.equal(snapshot.sanitize_duration_p95_ms, 9);
  assert.equal(snapshot.sanitize_total, 100_000);

  // A uniform sample: the estimate of a uniform spread lands near the true percentiles (the
  // bounds are over 6 standard errors of a 1000-sample estimate wide).
  const spread = new MetricsCollector({ thresholdPct: 99.9, durationSamples: 1000 });
  for (let i = 0; i < 100_000; i++) scrub(spread, i % 1000);
  const estimate = spread.snapshot(STATS);
  assert.ok(Math.abs(estimate.sanitize_duration_p50_ms - 500) < 100);
  assert.ok(Math.abs(estimate.sanitize_duration_p95_ms - 950) < 50);
});

Deno.test("without durationSamples, the p50/p95 are exact", () => {
  const metrics = new MetricsCollector({ thresholdPct: 99.9 });
  for (let i = 1; i <= 2001; i++) scrub(metrics, i);
  const snapshot = metrics.snapshot(STATS);
  assert.equal(snapshot.sanitize_duration_p50_ms, 1001);
  assert.equal(snapshot.sanitize_duration_p95_ms, 1901);
});
