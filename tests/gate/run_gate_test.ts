import assert from "node:assert/strict";
import { fileInput, runGate } from "../../lib/gate/run_gate.ts";
import { KvhError } from "../../lib/errors.ts";
import { withTempDir } from "../_temp_dir.ts";

const THRESHOLDS = { coverageMinPct: 99.9, unsanitizedMax: 0, quarantineMax: 0 };
const CLEAN = '{"min_coverage_pct": 100, "unsanitized_regions_count": 0, "quarantine_count": 0}';

Deno.test("runGate() writes the verdict and the bundle, parents created", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/m.json`, CLEAN);
    const document = await runGate(fileInput(`${dir}/m.json`), {
      thresholds: THRESHOLDS,
      out: `${dir}/x/verdict.json`,
      evidence: `${dir}/y/bundle`,
    });
    assert.equal(document.pass, true);
    const verdict = await Deno.readTextFile(`${dir}/x/verdict.json`);
    assert.equal(JSON.parse(verdict).input, `${dir}/m.json`);
    assert.equal(await Deno.readTextFile(`${dir}/y/bundle/verdict.json`), verdict);
    assert.equal(await Deno.readTextFile(`${dir}/y/bundle/metrics.json`), CLEAN);
  });
});

Deno.test("runGate() takes the bundle back when the verdict cannot be put in place", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/m.json`, CLEAN);
    // A directory where the verdict should go: staging works, the final rename fails.
    await Deno.mkdir(`${dir}/verdict.json`);
    await Deno.writeTextFile(`${dir}/verdict.json/keep`, "");
    await assert.rejects(
      runGate(fileInput(`${dir}/m.json`), {
        thresholds: THRESHOLDS,
        out: `${dir}/verdict.json`,
        evidence: `${dir}/bundle`,
      }),
      (error: unknown) => error instanceof KvhError && error.code === "output_unwritable",
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "m.json",
      "verdict.json",
    ]);
  });
});

Deno.test("runGate() writes nothing when the metrics are malformed", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/m.json`, '{"quarantine_count": 1, "quarantine_count": 0}');
    await assert.rejects(
      runGate(fileInput(`${dir}/m.json`), {
        thresholds: THRESHOLDS,
        out: `${dir}/verdict.json`,
        evidence: `${dir}/bundle`,
      }),
      /duplicate key/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["m.json"]);
  });
});

Deno.test("runGate() verifies the log and records the verification in the verdict and bundle", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/m.json`, CLEAN);
    const log = new URL("./fixtures/hmac/kv_cache.log", import.meta.url).pathname;
    const document = await runGate(fileInput(`${dir}/m.json`), {
      thresholds: THRESHOLDS,
      requireVerified: log,
      evidence: `${dir}/bundle`,
    });
    assert.equal(document.pass, false);
    assert.deepEqual(document.failures.map((f) => f.metric), ["log_macs_checked"]);
    const verification = JSON.parse(await Deno.readTextFile(`${dir}/bundle/verification.json`));
    assert.equal(verification.mac_present, true);
    assert.equal(verification.log, log);
  });
});

Deno.test("runGate() adds the test report to the bundle and refuses an unreadable one", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/m.json`, CLEAN);
    await Deno.writeTextFile(`${dir}/junit.xml`, "<testsuites/>");
    await runGate(fileInput(`${dir}/m.json`), {
      thresholds: THRESHOLDS,
      evidence: `${dir}/bundle`,
      testReport: `${dir}/junit.xml`,
    });
    assert.equal(await Deno.readTextFile(`${dir}/bundle/test-report.xml`), "<testsuites/>");
    await assert.rejects(
      runGate(fileInput(`${dir}/m.json`), {
        thresholds: THRESHOLDS,
        evidence: `${dir}/other`,
        testReport: `${dir}/absent.xml`,
      }),
      (error: unknown) => error instanceof KvhError && error.code === "test_report_unreadable",
    );
  });
});
