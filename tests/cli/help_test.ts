/** What a user sees of kvh's command line (issue 10.10): help that wraps, errors of one shape. */
import assert from "node:assert/strict";
import { buildProgram } from "../../cli/main.ts";
import { ROOT, runKvh } from "./_kvh.ts";
import { withTempDir } from "../retention/_log.ts";

Deno.test("kvh help wraps every command at the terminal's width", async () => {
  const program = await buildProgram();
  for (const command of [program, ...program.commands]) {
    for (const width of [60, 80]) {
      command.configureOutput({ getOutHelpWidth: () => width });
      const help = command.helpInformation();
      for (const line of help.split("\n")) {
        // Only a single word longer than the column may stick out.
        const fits = line.length <= width || /^\s*\S+$/.test(line);
        assert.ok(fits, `kvh ${command.name()} at ${width} columns: ${line}`);
      }
    }
  }
});

Deno.test("kvh help descriptions break lines only between sentences, so they reflow", async () => {
  const program = await buildProgram();
  for (const command of [program, ...program.commands]) {
    for (const line of command.description().split("\n")) {
      if (line !== "") assert.match(line, /[.:)]$/, `kvh ${command.name()}: ${line}`);
    }
  }
});

Deno.test("kvh prints commander's usage errors as kvh: <what>: <why>", async () => {
  const run = await runKvh(["verify", "--bogus"]);
  assert.equal(run.code, 1);
  assert.equal(run.stderr.split("\n")[0], "kvh: Invalid arguments: unknown option '--bogus'");
});

Deno.test("kvh trace --workload naming a directory says which flag and why", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/adir.jsonl`);
    const run = await runKvh([
      "trace",
      "--workload",
      `${dir}/adir.jsonl`,
      "--log-dir",
      `${dir}/log`,
      "--metrics-json",
      `${dir}/coverage.json`,
      "--metrics-prom",
      `${dir}/metrics.prom`,
    ]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      new RegExp(`^kvh: Cannot read --workload ${dir}/adir\\.jsonl: is a directory$`, "m"),
    );
  });
});

Deno.test("kvh names a path it may not read without Deno's advice to rerun with more permissions", async () => {
  await withTempDir(async (dir) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--allow-read=${ROOT}`,
        "--allow-env",
        "--allow-sys",
        "--allow-ffi",
        `${ROOT}cli/main.ts`,
        "verify",
        `${dir}/kv_cache.log`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 1, stderr);
    assert.match(stderr, new RegExp(`^kvh: Cannot \\w+ ${dir}\\b.*: `));
    assert.doesNotMatch(stderr, /--allow-|run again/);
  });
});

Deno.test("kvh verify --workers has an upper bound", async () => {
  const run = await runKvh(["verify", "--workers", "100000", "x.log"]);
  assert.equal(run.code, 1);
  assert.equal(run.stderr.split("\n")[0], "kvh: Invalid --workers: must be at most 64, got 100000");
});
