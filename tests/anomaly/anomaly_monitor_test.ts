import assert from "node:assert/strict";
import { AnomalyMonitor } from "../../lib/anomaly/mod.ts";

Deno.test("AnomalyMonitor.observe() flags a 1e6 spike after 10 normal observations", () => {
  const monitor = new AnomalyMonitor({ minReportIntervalMs: 0 });
  for (let i = 0; i < 10; i++) {
    assert.equal(monitor.observe("layer0", 1 + (i % 2) * 0.01).anomalous, false);
  }
  const verdict = monitor.observe("layer0", { mean: 1e6, max: 1e6 });
  assert.equal(verdict.anomalous, true);
  assert.equal(verdict.rule, "z");
  assert.equal(verdict.samples, 10);
});

Deno.test("AnomalyMonitor.observe() flags a max outlier when the mean is normal", () => {
  const monitor = new AnomalyMonitor({ minReportIntervalMs: 0 });
  for (let i = 0; i < 10; i++) monitor.observe("l", { mean: 1 + (i % 2), max: 2 });
  const verdict = monitor.observe("l", { mean: 1.5, max: 100 });
  assert.equal(verdict.rule, "max");
  const flat = new AnomalyMonitor({ minReportIntervalMs: 0 });
  for (let i = 0; i < 10; i++) flat.observe("f", 5);
  assert.equal(flat.observe("f", 5).anomalous, false);
  assert.equal(flat.observe("f", 56).rule, "max");
});

Deno.test("AnomalyMonitor.observe() does not score before minSamples", () => {
  const monitor = new AnomalyMonitor({ minSamples: 8 });
  for (let i = 0; i < 7; i++) monitor.observe("s", 1);
  assert.equal(monitor.observe("s", 1000).anomalous, false);
  assert.throws(() => monitor.observe("s", NaN), RangeError);
});

Deno.test("AnomalyMonitor.observe() rate-limits reports but counts every anomaly", () => {
  let now = 0;
  const monitor = new AnomalyMonitor({ minReportIntervalMs: 1000, now: () => now });
  for (let i = 0; i < 10; i++) monitor.observe("s", 1 + (i % 2) * 0.1);
  assert.equal(monitor.observe("s", 50).report, true);
  const held = monitor.observe("s", 50);
  assert.equal(held.anomalous, true);
  assert.equal(held.report, false);
  assert.equal(held.suppressed, 1);
  now += 1000;
  const next = monitor.observe("s", 500);
  assert.equal(next.report, true);
  assert.equal(next.suppressed, 1);
});
