/**
 * `kvh gate --prometheus` against a real Prometheus scraping two `kvh serve-metrics` exporters
 * (DESIGN.md §7): the fleet fails on the node with quarantines and names it, passes once both
 * nodes are healthy, and never passes when it cannot see the whole fleet.
 */
import assert from "node:assert/strict";
import {
  freePort,
  HAVE_PROMETHEUS,
  PROMETHEUS_BIN,
  ROOT,
  startExporter,
  startPrometheus,
  waitFor,
} from "./_harness.ts";
import { kvhRunArgs } from "../cli/_kvh.ts";

const SKIP = HAVE_PROMETHEUS
  ? ""
  : ` (skipped: ${PROMETHEUS_BIN} is not installed; .ci/run installs it)`;

function exposition(quarantined: number, coverage = 1): string {
  return [
    "# TYPE kvh_coverage_min_ratio gauge",
    `kvh_coverage_min_ratio ${coverage}`,
    "# TYPE kvh_unsanitized_buffers gauge",
    "kvh_unsanitized_buffers 0",
    "# TYPE kvh_quarantined_buffers gauge",
    `kvh_quarantined_buffers ${quarantined}`,
    "# TYPE kvh_sanitize_duration_p95_seconds gauge",
    "kvh_sanitize_duration_p95_seconds 0.004",
    "",
  ].join("\n");
}

async function replaceAtomically(path: string, content: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, content);
  await Deno.rename(`${path}.tmp`, path);
}

async function gate(args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [...kvhRunArgs(), "gate", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  return {
    code,
    stdout: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr),
  };
}

interface Check {
  name: string;
  actual: number;
  pass: boolean;
  source?: string;
}

Deno.test({
  name:
    `kvh gate --prometheus fails on the node with quarantines and passes a healthy fleet${SKIP}`,
  ignore: !HAVE_PROMETHEUS,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const good = `${dir}/good.prom`;
      const bad = `${dir}/bad.prom`;
      await replaceAtomically(good, exposition(0));
      await replaceAtomically(bad, exposition(2, 0.998));
      await using goodNode = await startExporter(["--file", good, "--port", "0"]);
      await using badNode = await startExporter(["--file", bad, "--port", "0"]);
      const badInstance = `127.0.0.1:${badNode.port}`;
      await using prometheus = await startPrometheus([
        { target: `127.0.0.1:${goodNode.port}` },
        { target: badInstance },
      ]);
      await waitFor("both nodes' metrics", async () => {
        const samples = await prometheus.query('kvh_quarantined_buffers{job="kvh"}');
        return samples.length === 2 ? true : undefined;
      });

      const failing = await gate([
        "--prometheus",
        prometheus.url,
        "--selector",
        '{job="kvh"}',
        "--p95-max-ms",
        "10",
        "--json",
      ]);
      assert.equal(failing.code, 2, failing.stderr);
      const verdict = JSON.parse(failing.stdout) as { pass: boolean; checks: Check[] };
      assert.equal(verdict.pass, false);
      const byName = new Map(verdict.checks.map((c) => [c.name, c]));
      assert.deepEqual(byName.get("quarantine_count"), {
        ...byName.get("quarantine_count"),
        actual: 2,
        pass: false,
        source: badInstance,
      });
      assert.equal(byName.get("coverage_pct")?.source, badInstance);
      assert.equal(byName.get("coverage_pct")?.actual, 99.8);
      assert.equal(byName.get("coverage_pct")?.pass, false);
      assert.equal(byName.get("sanitize_duration_p95_ms")?.actual, 4);

      const table = await gate(["--prometheus", prometheus.url]);
      assert.equal(table.code, 2);
      assert.match(table.stdout, new RegExp(`quarantine_count .*2 \\(${badInstance}\\)\\s+FAIL`));

      await replaceAtomically(bad, exposition(0));
      await waitFor("the fleet to be healthy in Prometheus", async () => {
        const samples = await prometheus.query('sum(kvh_quarantined_buffers{job="kvh"})');
        const coverage = await prometheus.query('min(kvh_coverage_min_ratio{job="kvh"})');
        return samples[0]?.value === 0 && coverage[0]?.value === 1 ? true : undefined;
      });
      const passing = await gate(["--prometheus", prometheus.url, "--selector", '{job="kvh"}']);
      assert.equal(passing.code, 0, passing.stdout + passing.stderr);
      assert.match(passing.stdout, /verdict: PASS/);

      const nothing = await gate(["--prometheus", prometheus.url, "--selector", '{job="nope"}']);
      assert.equal(nothing.code, 1);
      assert.match(nothing.stderr, /kvh: No series for kvh_coverage_min_ratio\{job="nope"\}/);

      await Deno.remove(bad);
      await waitFor("the bad node's target to be down", async () => {
        const up = await prometheus.query(`up{instance="${badInstance}"}`);
        return up[0]?.value === 0 ? true : undefined;
      });
      const down = await gate(["--prometheus", prometheus.url]);
      assert.equal(down.code, 1);
      assert.match(down.stderr, new RegExp(`1 of 2 targets .* are down .*${badInstance}`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("kvh gate --prometheus exits 1 when Prometheus is unreachable", async () => {
  const url = `http://127.0.0.1:${freePort()}`;
  const result = await gate(["--prometheus", url]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`kvh: Cannot reach Prometheus at ${url}`));
  assert.equal(result.stdout, "");
});

Deno.test("kvh gate rejects --prometheus with a file and --selector without --prometheus", async () => {
  const both = await gate(["metrics.json", "--prometheus", "http://127.0.0.1:1"]);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /Invalid --prometheus: give it or metrics\.json, not both/);
  const lone = await gate(["metrics.json", "--selector", '{job="kvh"}']);
  assert.equal(lone.code, 1);
  assert.match(lone.stderr, /Invalid --selector: it needs --prometheus URL/);
});
