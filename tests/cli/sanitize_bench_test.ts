import assert from "node:assert/strict";
import { kvhRunArgs } from "./_kvh.ts";

const MISSING_LIBRARY = "/nonexistent/libkvh_cuda.so";

const xdg = Deno.env.get("XDG_RUNTIME_DIR") ?? Deno.makeTempDirSync({ prefix: "kvh-xdg-" });
Deno.chmodSync(xdg, 0o700);
Deno.env.set("XDG_RUNTIME_DIR", xdg);
const adapter = await navigator.gpu.requestAdapter();

async function kvh(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...kvhRunArgs(), "sanitize-bench", ...args],
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: xdg, KVH_CUDA_LIB: MISSING_LIBRARY, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("kvh sanitize-bench --json prints one document with a row per size", async () => {
  const { code, stdout, stderr } = await kvh([
    "--device",
    "cpu",
    "--sizes",
    "4KiB,64KiB",
    "--iterations",
    "2",
    "--json",
  ]);
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout);
  assert.equal(report.device, "cpu");
  assert.equal(report.verify, "full");
  assert.equal(report.doublePass, false);
  assert.equal(report.ok, true);
  assert.equal(typeof report.deviceName, "string");
  assert.deepEqual(report.results.map((r: { size: string }) => r.size), ["4KiB", "64KiB"]);
  for (const row of report.results) {
    assert.equal(row.iterations, 2);
    assert.ok(row.zero.gbps > 0);
    assert.equal(typeof row.zero.pctOfRoofline, "number");
    assert.ok(row.verify.gbps > 0);
    assert.ok(row.scrubVerify.p95Ms >= row.scrubVerify.p50Ms);
    assert.ok(row.roofline.writeGBps > 0 && row.roofline.readGBps > 0);
    assert.equal(row.nonZeroAfterScrub, 0);
  }
  assert.match(stderr, /kvh: cpu 4KiB: roofline\n/);
});

Deno.test("kvh sanitize-bench prints a table with --verify none and --double-pass", async () => {
  const { code, stdout, stderr } = await kvh([
    "--device",
    "cpu",
    "--sizes",
    "16KiB",
    "--iterations",
    "2",
    "--verify",
    "none",
    "--double-pass",
  ]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^cpu: .* — zero with .* kernels, verify none, double pass\n/);
  assert.match(stdout, /size\s+zero GB\/s\s+% roof\s+verify GB\/s/);
  assert.match(stdout, /\n16KiB\s+[\d.]+\s+\d+\s+-\s+-\s+/);
  assert.match(stdout, /every scrub left zeros\n$/);
});

Deno.test("kvh sanitize-bench exits 1 naming a bad --sizes entry", async () => {
  const { code, stdout, stderr } = await kvh(["--device", "cpu", "--sizes", "4KiB,4XB"]);
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.match(stderr, /^kvh: Invalid --sizes: "4XB" is not a size/);
});

Deno.test("kvh sanitize-bench exits 1 on a bad device, iteration count or block spec", async () => {
  for (
    const [args, message] of [
      [["--device", "tpu"], /argument 'tpu' is invalid/],
      [["--device", "cpu", "--iterations", "0"], /Invalid --iterations: must be at least 1/],
      [["--device", "cpu", "--blocks", "4x"], /Invalid --blocks: "4x" is not COUNTxSIZE/],
      [
        ["--device", "cpu", "--sizes", "4KiB", "--blocks", "4x1KiB"],
        /Invalid --blocks: small-block mode needs --device cuda, got cpu/,
      ],
    ] as const
  ) {
    const { code, stderr } = await kvh([...args]);
    assert.equal(code, 1, args.join(" "));
    assert.match(stderr, message);
  }
});

Deno.test("kvh sanitize-bench --device cuda exits 1 with a clear message when CUDA is unavailable", async () => {
  const { code, stdout, stderr } = await kvh(["--device", "cuda", "--sizes", "4KiB"]);
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.match(
    stderr,
    /^kvh: CUDA unavailable: libkvh_cuda\.so not found \(looked in \/nonexistent\//,
  );
});

Deno.test({
  name: "kvh sanitize-bench --device auto falls back to the CPU and says why on stderr",
  ignore: adapter !== null && !adapter.info.isFallbackAdapter,
  fn: async () => {
    const { code, stdout, stderr } = await kvh(["--sizes", "4KiB", "--iterations", "1", "--json"]);
    assert.equal(code, 0, stderr);
    assert.equal(JSON.parse(stdout).device, "cpu");
    assert.match(stderr, /^kvh: CUDA unavailable \(.*\): using CPU$/m);
  },
});

Deno.test({
  name: "kvh sanitize-bench --device webgpu measures against the copy roofline",
  ignore: adapter === null,
  fn: async () => {
    const { code, stdout, stderr } = await kvh([
      "--device",
      "webgpu",
      "--sizes",
      "64KiB",
      "--iterations",
      "2",
      "--json",
    ]);
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout);
    assert.equal(report.device, "webgpu");
    assert.equal(report.ok, true);
    assert.deepEqual(report.results[0].roofline.methods, { copy: "copyBufferToBuffer" });
    assert.ok(report.results[0].roofline.copyGBps > 0);
  },
});

Deno.test("kvh sanitize-bench help and report name the same roofline and zeroing methods", async () => {
  const help = await kvh(["--help"]);
  assert.equal(help.code, 0);
  const text = help.stdout.replace(/\s+/g, " ");
  const run = await kvh(["--device", "cpu", "--sizes", "4KiB", "--iterations", "1"]);
  assert.equal(run.code, 0, run.stderr);
  const roofline = run.stdout.match(/^roofline: write: (.*); read: (.*)$/m);
  assert.ok(roofline, run.stdout);
  assert.ok(text.includes(`CPU: ${roofline[1]} and ${roofline[2]};`), text);
  assert.match(run.stdout, /^cpu: .* — zero with (ts|native) kernels, verify full\b/m);
  const json = await kvh(["--device", "cpu", "--sizes", "4KiB", "--iterations", "1", "--json"]);
  const report = JSON.parse(json.stdout);
  assert.match(report.zeroMethod, /^(ts|native) kernels$/);
  assert.deepEqual(report.results[0].roofline.methods, { write: roofline[1], read: roofline[2] });
  assert.match(text, /memset \(cudaMemsetAsync\) or kernel \(kvh 16-byte-store kernel\)/);
});
