import assert from "node:assert/strict";
import { evaluateGate } from "../../lib/gate/evaluate_gate.ts";
import { addLogCheck, verdictDocument } from "../../lib/gate/verdict_document.ts";
import { renderVerdictTable } from "../../lib/gate/verdict_table.ts";
import type { GateMetrics } from "../../lib/gate/types.ts";
import type { VerifyReport } from "../../lib/forensic/types.ts";

const THRESHOLDS = { coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 0 };
const CLEAN: GateMetrics = {
  min_coverage_pct: 100,
  unsanitized_regions_count: 0,
  quarantine_count: 0,
};
const VERIFIED: VerifyReport = {
  ok: true,
  files: 1,
  records: 3,
  head: null,
  mac_checked: false,
  failure: null,
};

Deno.test("addLogCheck() fails log_macs_checked for MACs checked without a key, unless chainOnly", () => {
  const verdict = evaluateGate(CLEAN, THRESHOLDS);
  const unkeyed = addLogCheck(verdict, { ...VERIFIED, mac_present: true }, "kv.log");
  assert.equal(unkeyed.pass, false);
  assert.deepEqual(unkeyed.failures, [
    { metric: "log_macs_checked", actual: 0, expected_min: 1, source: "kv.log" },
  ]);
  const accepted = addLogCheck(verdict, { ...VERIFIED, mac_present: true }, "kv.log", {
    chainOnly: true,
  });
  assert.equal(accepted.pass, true);
  assert.deepEqual(accepted.checks.map((check) => check.name).at(-1), "log_verified");
  const keyed = addLogCheck(
    verdict,
    { ...VERIFIED, mac_present: true, mac_checked: true },
    "kv.log",
  );
  assert.equal(keyed.pass, true);
  assert.equal(addLogCheck(verdict, VERIFIED, "kv.log").pass, true);
});

Deno.test("renderVerdictTable() says why a log, its MACs or the run failed the gate", () => {
  const failure = { reason: "hash_mismatch" as const, file: "kv.log", line: 13, detail: "edited" };
  let verdict = evaluateGate({ ...CLEAN, run_status: "interrupted" }, THRESHOLDS);
  const report = { ...VERIFIED, ok: false, mac_present: true, failure };
  verdict = addLogCheck(verdict, report, "kv.log");
  const document = verdictDocument(verdict, {
    metrics: {},
    input: "coverage.json",
    verification: { ...report, log: "kv.log" },
  });
  const table = renderVerdictTable(document, false);
  assert.match(table, /^run_status +completed\|running\|stopped +interrupted +FAIL$/m);
  assert.match(table, /^log_verified +>= verified +not verified \(kv\.log\) +FAIL$/m);
  assert.match(table, /^log_macs_checked +>= checked +not checked \(no key\) \(kv\.log\) +FAIL$/m);
  assert.match(table, /^run: the run that wrote coverage\.json ended interrupted, so its metrics/m);
  assert.match(table, /^log: hash_mismatch at kv\.log:13: edited$/m);
  assert.match(table, /^log: it carries MACs but no key was given/m);
  assert.match(table, /verdict: FAIL$/);
  const colored = renderVerdictTable(document, true);
  assert.ok(colored.includes("\x1b[31mFAIL\x1b[0m"));
  const passing = verdictDocument(evaluateGate(CLEAN, THRESHOLDS), { metrics: {}, input: "m" });
  assert.ok(renderVerdictTable(passing, true).endsWith("verdict: \x1b[32mPASS\x1b[0m"));
});
