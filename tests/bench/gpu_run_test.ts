import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

// bench/gpu/run.sh on this GPU-less machine: its CPU-side parts (arguments, GPU detection, the
// size choice, step accounting, timeouts, the results file) run against stub `nvidia-smi` and
// `deno` programs that record what they were asked.
const SCRIPT = fileURLToPath(new URL("../../bench/gpu/run.sh", import.meta.url));

interface Run {
  code: number;
  stderr: string;
  report: string;
  calls: string;
}

async function run(
  args: string[],
  stubs: { smi?: string; deno?: string },
  env: Record<string, string> = {},
): Promise<Run> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/bin`);
    const smi = stubs.smi ?? "exit 1";
    await Deno.writeTextFile(`${dir}/bin/nvidia-smi`, `#!/usr/bin/env bash\n${smi}\n`, {
      mode: 0o755,
    });
    const deno = stubs.deno ?? "";
    await Deno.writeTextFile(
      `${dir}/deno`,
      `#!/usr/bin/env bash\necho "$*" >>"${dir}/calls"\n` +
        `if [ "$1" = --version ]; then echo "deno 2.9.6 (stub)"; exit 0; fi\n${deno}\n`,
      { mode: 0o755 },
    );
    const { code, stderr } = await new Deno.Command("bash", {
      args: [SCRIPT, "--deno", `${dir}/deno`, ...args.map((a) => a.replace("OUT", `${dir}/out`))],
      env: { ...env, PATH: `${dir}/bin:${Deno.env.get("PATH")}` },
      stdout: "null",
      stderr: "piped",
    }).output();
    const read = (path: string) => Deno.readTextFile(path).catch(() => "");
    return {
      code,
      stderr: new TextDecoder().decode(stderr),
      report: await read(`${dir}/out/gpu.md`),
      calls: await read(`${dir}/calls`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const H200 = 'echo "NVIDIA H200, 570.86.15, 143771, 140000"';
const PASSING = `case "$*" in
  test*) echo "ok | 9 passed | 0 failed (3s)" ;;
  *sanitize-bench*) echo "cuda 64 MiB: roofline" >&2; echo '{"results":[{"bytes":67108864}]}' ;;
esac`;

Deno.test("run.sh exits 1 with its usage when no results folder is given", async () => {
  const { code, stderr } = await run([], {});
  assert.equal(code, 1);
  assert.match(stderr, /usage: bench\/gpu\/run\.sh/);
});

Deno.test("run.sh exits 3 and says so in gpu.md when there is no NVIDIA GPU", async () => {
  const { code, report, calls } = await run(["OUT"], {});
  assert.equal(code, 3);
  assert.match(report, /No NVIDIA GPU/);
  assert.equal(calls, "", "nothing else may run");
});

Deno.test("run.sh runs the tests and both benchmarks and reports GPU, driver and figures", async () => {
  const { code, report, calls } = await run(["--skip-build", "OUT"], { smi: H200, deno: PASSING });
  assert.equal(code, 0, report);
  assert.match(report, /GPU: NVIDIA H200, driver 570\.86\.15, 143771 MiB/);
  assert.match(report, /\| build \| skipped/);
  for (const name of ["tests", "bench", "blocks"]) {
    assert.match(report, new RegExp(`\\| ${name} \\| pass \\| 0 \\|`));
  }
  assert.match(report, /CUDA tests: ok \| 9 passed/);
  assert.match(report, /\{"results":\[\{"bytes":67108864\}\]\}/);
  assert.match(calls, /test --allow-all tests\/sanitize\/cuda_test\.ts/);
  // 140000 MiB free: room for two 16 GiB buffers.
  assert.match(calls, /sanitize-bench --device cuda --sizes 64MiB,1GiB,16GiB --json/);
  assert.match(calls, /sanitize-bench --device cuda --blocks 16384x64KiB --json/);
});

Deno.test("run.sh leaves out 16 GiB when the GPU has too little free memory", async () => {
  const smi = 'echo "NVIDIA A10, 550.54, 23028, 22000"';
  const { code, calls } = await run(["--skip-build", "OUT"], { smi, deno: PASSING });
  assert.equal(code, 0);
  assert.match(calls, /--sizes 64MiB,1GiB --json/);
});

Deno.test("run.sh exits 2 and marks the step when a step fails or runs past its limit", async () => {
  const deno = `case "$*" in
  test*) exec sleep 30 ;;
  *--blocks*) exit 2 ;;
esac`;
  const { code, report } = await run(["--skip-build", "OUT"], { smi: H200, deno }, {
    KVH_GPU_LIMIT_TESTS: "1",
  });
  assert.equal(code, 2);
  assert.match(report, /\| tests \| timed out \| 124 \|/);
  assert.match(report, /\| bench \| pass \|/);
  assert.match(report, /\| blocks \| fail \| 2 \|/);
});
