/**
 * In-process costs of the gate's steps. The number that matters to CI, process start to exit of
 * `kvh gate`, is measured by bench/gate_wall.ts; see bench/results/gate.md.
 */
import { evaluateGate } from "../lib/gate/evaluate_gate.ts";
import { parseGateMetrics } from "../lib/gate/read_metrics.ts";
import { parseGatePolicy } from "../lib/gate/policy.ts";
import { writeEvidenceBundle } from "../lib/gate/evidence.ts";

const METRICS_TEXT = await Deno.readTextFile(
  new URL("../tests/gate/fixtures/fail-quarantine.json.txt", import.meta.url),
);
const METRICS = parseGateMetrics(METRICS_TEXT, "bench").metrics;
const THRESHOLDS = {
  coverageMinPct: 99.9,
  unsanitizedMax: 0,
  quarantineMax: 0,
  p95MaxMs: 100,
  reuseRateMax: 1,
};

Deno.bench("parseGateMetrics", () => {
  parseGateMetrics(METRICS_TEXT, "bench");
});

Deno.bench("evaluateGate", () => {
  evaluateGate(METRICS, THRESHOLDS);
});

Deno.bench("parseGatePolicy", () => {
  parseGatePolicy('{"coverage_pct_min": 99.9, "quarantine_count_max": 0}', "bench");
});

const PARENT = await Deno.makeTempDir();
let bundles = 0;
Deno.bench("writeEvidenceBundle (3 small files, fsynced)", async () => {
  await writeEvidenceBundle(`${PARENT}/b${bundles++}`, [
    { name: "metrics.json", data: METRICS_TEXT },
    { name: "verdict.json", data: '{"pass": false}\n' },
    { name: "verification.json", data: '{"ok": true}\n' },
  ]);
});

globalThis.addEventListener("unload", () => {
  Deno.removeSync(PARENT, { recursive: true });
});
