/** Output flags of every subcommand: one helper, one message, one exit code (issue 10.1). */
import assert from "node:assert/strict";
import { runKvh } from "./_kvh.ts";
import { withTempDir, writeRotatedLog } from "../retention/_log.ts";

const GOOD_METRICS = JSON.stringify({
  min_coverage_pct: 100,
  unsanitized_regions_count: 0,
  quarantine_count: 0,
});

/** A path under a regular file: no output can be written there. */
async function blockedPath(dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/file`, "");
  return `${dir}/file/out.json`;
}

function assertUnwritable(run: { code: number; stderr: string }, flag: string, path: string) {
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, new RegExp(`^kvh: Cannot write ${flag} ${path}: `, "m"));
}

Deno.test("kvh prune --out that cannot be written is exit 1 naming the flag and path", async () => {
  await withTempDir(async (dir) => {
    await writeRotatedLog(`${dir}/log`, { records: 3 });
    const out = await blockedPath(dir);
    const run = await runKvh(["prune", "--log-dir", `${dir}/log`, "--dry-run", "--out", out]);
    assertUnwritable(run, "--out", out);
  });
});

Deno.test("kvh gate --out that cannot be written is exit 1 naming the flag and path", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/coverage.json`, GOOD_METRICS);
    const out = await blockedPath(dir);
    const run = await runKvh(["gate", `${dir}/coverage.json`, "--out", out]);
    assertUnwritable(run, "--out", out);
  });
});

Deno.test("kvh trace --metrics-json that cannot be written is exit 1 naming the flag and path", async () => {
  await withTempDir(async (dir) => {
    const out = await blockedPath(dir);
    const run = await runKvh([
      "trace",
      "--requests",
      "2",
      "--log-dir",
      `${dir}/log`,
      "--metrics-json",
      out,
      "--metrics-prom",
      `${dir}/metrics.prom`,
    ]);
    assertUnwritable(run, "--metrics-json", out);
  });
});
