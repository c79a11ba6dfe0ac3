/**
 * `kvh serve-metrics` scraped by a real Prometheus (Debian's package, installed by .ci/run):
 * the value Prometheus stores is the file's, an atomic replacement reaches it, a removed file
 * shows as a failed scrape (503), and a bearer token configured on both sides works.
 */
import assert from "node:assert/strict";
import {
  HAVE_PROMETHEUS,
  PROMETHEUS_BIN,
  startExporter,
  startPrometheus,
  waitFor,
} from "./_harness.ts";

const SKIP = HAVE_PROMETHEUS
  ? ""
  : ` (skipped: ${PROMETHEUS_BIN} is not installed; .ci/run installs it)`;

function exposition(coverage: number, quarantined: number): string {
  return [
    "# HELP kvh_coverage_min_ratio Lowest verified scrub coverage of any buffer, 0-1.",
    "# TYPE kvh_coverage_min_ratio gauge",
    `kvh_coverage_min_ratio ${coverage}`,
    "# HELP kvh_quarantined_buffers Buffers currently quarantined.",
    "# TYPE kvh_quarantined_buffers gauge",
    `kvh_quarantined_buffers ${quarantined}`,
    "# HELP kvh_quarantines_total Buffers quarantined, by reason.",
    "# TYPE kvh_quarantines_total counter",
    `kvh_quarantines_total{reason="coverage"} ${quarantined}`,
    "",
  ].join("\n");
}

async function replaceAtomically(path: string, content: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, content);
  await Deno.rename(`${path}.tmp`, path);
}

Deno.test({
  name:
    `Prometheus scrapes serve-metrics, sees an atomic replacement and the 503 of a removed file${SKIP}`,
  ignore: !HAVE_PROMETHEUS,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/metrics.prom`;
      await replaceAtomically(file, exposition(0.999, 0));
      await using exporter = await startExporter(["--file", file, "--port", "0"]);
      await using prometheus = await startPrometheus([{ target: `127.0.0.1:${exporter.port}` }]);

      await waitFor("the target to be up", async () => {
        const up = await prometheus.query('up{job="kvh"}');
        return up.length === 1 && up[0]!.value === 1 ? true : undefined;
      });
      const first = await waitFor("kvh_coverage_min_ratio", async () => {
        const samples = await prometheus.query('kvh_coverage_min_ratio{job="kvh"}');
        return samples[0]?.value;
      });
      assert.equal(first, 0.999);
      const reason = await prometheus.query('kvh_quarantines_total{reason="coverage"}');
      assert.equal(reason[0]?.value, 0);
      const own = await waitFor("the exporter's own scrape counter", async () => {
        const samples = await prometheus.query('kvh_exporter_scrapes_total{code="200"}');
        return samples[0]?.value;
      });
      assert.ok(own >= 1);

      await replaceAtomically(file, exposition(0.5, 3));
      const quarantined = await waitFor("the replaced value", async () => {
        const samples = await prometheus.query("kvh_quarantined_buffers");
        return samples[0]?.value === 3 ? samples[0] : undefined;
      });
      assert.equal(quarantined.metric.instance, `127.0.0.1:${exporter.port}`);
      const coverage = await prometheus.query("kvh_coverage_min_ratio");
      assert.equal(coverage[0]?.value, 0.5);

      await Deno.remove(file);
      const target = await waitFor("the target to report the 503", async () => {
        const [t] = await prometheus.targets();
        return t?.health === "down" ? t : undefined;
      });
      assert.match(target.lastError, /503/);
      const up = await prometheus.query('up{job="kvh"}');
      assert.equal(up[0]?.value, 0);
      // A failed scrape marks the series stale: the gate can never read the old value as current.
      assert.deepEqual(await prometheus.query("kvh_quarantined_buffers"), []);

      await replaceAtomically(file, exposition(1, 0));
      await waitFor("the target to be up again", async () => {
        const samples = await prometheus.query("kvh_coverage_min_ratio");
        return samples[0]?.value === 1 ? true : undefined;
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: `Prometheus scrapes serve-metrics with the bearer token of --token-file${SKIP}`,
  ignore: !HAVE_PROMETHEUS,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await replaceAtomically(`${dir}/metrics.prom`, exposition(1, 0));
      await Deno.writeTextFile(`${dir}/token`, "prom-scrape-token\n", { mode: 0o600 });
      await Deno.chmod(`${dir}/token`, 0o600);
      await Deno.writeTextFile(`${dir}/wrong`, "not-the-token\n", { mode: 0o600 });
      await using exporter = await startExporter([
        "--file",
        `${dir}/metrics.prom`,
        "--port",
        "0",
        "--token-file",
        `${dir}/token`,
      ]);
      const target = `127.0.0.1:${exporter.port}`;
      await using prometheus = await startPrometheus([
        { target, credentialsFile: `${dir}/token` },
        { target, credentialsFile: `${dir}/wrong` },
      ]);
      const targets = await waitFor("both targets to be scraped", async () => {
        const all = await prometheus.targets();
        return all.length === 2 && all.every((t) => t.health !== "unknown") ? all : undefined;
      });
      const health = targets.map((t) => t.health).sort();
      assert.deepEqual(health, ["down", "up"]);
      assert.match(targets.find((t) => t.health === "down")!.lastError, /401/);
      const samples = await prometheus.query("kvh_coverage_min_ratio");
      assert.deepEqual(samples.map((s) => s.value), [1]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
