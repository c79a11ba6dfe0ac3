/**
 * The side-by-side table of issue 13: kvh against the Python tool on the work both do. kvh is
 * measured here, whole process where the table says so (a `kvh` child per run, Deno start-up
 * included); the Python tool is not installed anywhere kvh is benchmarked, so its figures are
 * read from bench/python_tool_figures.json, which says where they come from. Medians of
 * `--runs` runs; the load average before and after is recorded, since figures taken while
 * other jobs run are not comparable.
 *
 * Run: deno task bench:compare (builds ffi/native first), or
 *      deno run -A bench/compare.ts [--runs 3] [--out bench/results] [--quick]
 * Writes <out>/compare.md and <out>/compare.json. `--quick` shrinks every size (a smoke test,
 * not a benchmark).
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { sealV1Record } from "../lib/forensic/format_v1.ts";
import { openForensicLog } from "../lib/forensic/writer.ts";
import { loadNativeDigests } from "../lib/forensic/native_digest.ts";
import { loadNativeCpuKernels } from "../lib/sanitize/native.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    out: { type: "string", default: fileURLToPath(new URL("results", import.meta.url)) },
    quick: { type: "boolean", default: false },
  },
});
const RUNS = Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new RangeError(`Invalid --runs: ${values.runs}`);
const QUICK = values.quick;
const RECORDS = QUICK ? 2_000 : 300_000;
const LIFECYCLES = QUICK ? 200 : 20_000;
const SCRUB_BYTES = QUICK ? 1 << 20 : 64 << 20;
const CLI = fileURLToPath(new URL("../cli/main.ts", import.meta.url));

interface PythonFigures {
  source: string;
  verifyLinesPerSecond: number;
  appendRecordsPerSecond: number;
  traceLifecyclesPerSecond: number;
  scrubVerifyGBps: number;
}
const python = JSON.parse(
  Deno.readTextFileSync(new URL("python_tool_figures.json", import.meta.url)),
) as PythonFigures;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");

/** Runs `kvh ARGS` as its own process; returns its wall time in seconds and its stdout. */
async function kvh(args: string[], expectCode = 0): Promise<{ seconds: number; stdout: string }> {
  const start = performance.now();
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - start) / 1000;
  if (code !== expectCode) {
    throw new Error(`kvh ${args.join(" ")} exited ${code}: ${new TextDecoder().decode(stderr)}`);
  }
  return { seconds, stdout: new TextDecoder().decode(stdout) };
}

async function timed(run: () => Promise<number>): Promise<number> {
  const seconds: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await writeBack();
    seconds.push(await run());
  }
  return median(seconds);
}

/**
 * Writes every dirty page back (`sync`) before a timed run: the appends leave ~100 MB of log
 * to write back, and a run measured while the kernel does so pays for it in every fsync (a
 * trace's 20k lifecycles ran up to 20 % slower right after them).
 */
async function writeBack(): Promise<void> {
  await new Deno.Command("sync").output().catch(() => {});
}

const loadBefore = load();
const root = await Deno.makeTempDir({ prefix: "kvh-compare-" });
try {
  // Append (no MAC) at the default durability, in process: the log a trace writes.
  const appendSeconds = await timed(async () => {
    const dir = await Deno.makeTempDir({ dir: root });
    // One file: 300k records pass the default 64 MiB rotation size, and the verify runs below
    // read this file alone.
    const log = await openForensicLog({ dir, maxBytes: 1 << 30 });
    const start = performance.now();
    for (let i = 0; i < RECORDS; i++) await log.append("allocate", fields(i));
    await log.close();
    const seconds = (performance.now() - start) / 1000;
    // The verify runs read the log of the last append run.
    await Deno.rename(`${dir}/kv_cache.log`, `${root}/v2.log`);
    return seconds;
  });

  // A v1 log of the same record count, written the way the Python tool writes it.
  const v1 = await Deno.open(`${root}/v1.log`, { write: true, create: true });
  let prev = "GENESIS";
  const encoder = new TextEncoder();
  let batch = "";
  for (let i = 0; i < RECORDS; i++) {
    const { line, currHash } = sealV1Record(
      { event_type: "allocate", ...fields(i) },
      prev,
      { now: new Date(Date.UTC(2026, 0, 1) + i) },
    );
    prev = currHash;
    batch += line + "\n";
    if (batch.length > 1 << 20 || i === RECORDS - 1) {
      await v1.write(encoder.encode(batch));
      batch = "";
    }
  }
  v1.close();

  const verifyV1 = await timed(async () => (await kvh(["verify", `${root}/v1.log`])).seconds);
  const verifyV2 = await timed(async () => (await kvh(["verify", `${root}/v2.log`])).seconds);

  // 4 KiB KV caches: 2 (K and V) x 1 layer x 1 head x 16 tokens x 64 dims x 2 bytes.
  const workload = Array.from({ length: LIFECYCLES }, (_, i) =>
    JSON.stringify({
      tenant_id: `tenant-${i % 4}`,
      request_id: `req-${i}`,
      model_id: "llama-3-8b",
      tokens: 16,
      layers: 1,
      kv_heads: 1,
      head_dim: 64,
      dtype: "float16",
    }) + "\n").join("");
  await Deno.writeTextFile(`${root}/workload.jsonl`, workload);
  let traceRun = 0;
  const trace = await timed(async () => {
    const dir = `${root}/trace-${traceRun++}`;
    return (await kvh(["trace", "--workload", `${root}/workload.jsonl`, "--log-dir", dir]))
      .seconds;
  });

  // CPU scrub + full verify against the write roofline of the same sanitize-bench run.
  const scrubs: { effectiveGBps: number; writeGBps: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const { stdout } = await kvh([
      "sanitize-bench",
      "--device",
      "cpu",
      "--sizes",
      String(SCRUB_BYTES),
      "--verify",
      "full",
      "--json",
    ]);
    const result = JSON.parse(stdout).results[0];
    scrubs.push({
      effectiveGBps: result.bytes / (result.scrubVerify.p50Ms / 1000) / 1e9,
      writeGBps: result.roofline.writeGBps,
    });
  }
  scrubs.sort((a, b) => a.effectiveGBps - b.effectiveGBps);
  const scrub = scrubs[scrubs.length >> 1]!;

  const figures: Figures = {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    cpus: navigator.hardwareConcurrency,
    loadBefore,
    loadAfter: load(),
    runs: RUNS,
    quick: QUICK,
    nativeDigests: loadNativeDigests() !== undefined,
    nativeCpuKernels: loadNativeCpuKernels() !== undefined,
    records: RECORDS,
    lifecycles: LIFECYCLES,
    scrubBytes: SCRUB_BYTES,
    kvh: {
      verifyV1LinesPerSecond: RECORDS / verifyV1,
      verifyV2RecordsPerSecond: RECORDS / verifyV2,
      traceLifecyclesPerSecond: LIFECYCLES / trace,
      appendRecordsPerSecond: RECORDS / appendSeconds,
      scrubVerifyGBps: scrub.effectiveGBps,
      writeRooflineGBps: scrub.writeGBps,
    },
    python,
  };
  await Deno.mkdir(values.out, { recursive: true });
  await Deno.writeTextFile(`${values.out}/compare.json`, JSON.stringify(figures, null, 2) + "\n");
  await Deno.writeTextFile(`${values.out}/compare.md`, render(figures));
  console.log(render(figures));
} finally {
  await Deno.remove(root, { recursive: true });
}

function fields(i: number) {
  return {
    tenant_id: `tenant-${i % 4}`,
    request_id: `req-${i}`,
    model_id: "llama-3-8b",
    handle: `b-${i.toString(16)}`,
    nbytes: 4096,
    device: "cpu",
  };
}

interface Figures {
  date: string;
  deno: string;
  cpus: number;
  loadBefore: string;
  loadAfter: string;
  runs: number;
  quick: boolean;
  nativeDigests: boolean;
  nativeCpuKernels: boolean;
  records: number;
  lifecycles: number;
  scrubBytes: number;
  kvh: {
    verifyV1LinesPerSecond: number;
    verifyV2RecordsPerSecond: number;
    traceLifecyclesPerSecond: number;
    appendRecordsPerSecond: number;
    scrubVerifyGBps: number;
    writeRooflineGBps: number;
  };
  python: PythonFigures;
}

function render(f: Figures): string {
  const k = (x: number) => `${Math.round(x / 1000)}k`;
  const times = (x: number, y: number) => `${(x / y).toFixed(2)}×`;
  const met = (ratio: number, accept: number, aim: number) =>
    ratio >= aim ? "aim met" : ratio >= accept ? "accept met" : "not met";
  const { kvh: m, python: p } = f;
  const pct = (100 * m.scrubVerifyGBps) / m.writeRooflineGBps;
  const rows = [
    [
      `\`verify\` of a ${k(f.records)}-line Python-tool (v1) log, whole process`,
      `${k(p.verifyLinesPerSecond)} lines/s`,
      `${k(m.verifyV1LinesPerSecond)} lines/s`,
      times(m.verifyV1LinesPerSecond, p.verifyLinesPerSecond),
      "3× / 5×",
      met(m.verifyV1LinesPerSecond / p.verifyLinesPerSecond, 3, 5),
    ],
    [
      `\`verify\` of a kvh (v2) log of ${
        k(f.records)
      } records, whole process, vs the Python tool on its own log`,
      `${k(p.verifyLinesPerSecond)} lines/s`,
      `${k(m.verifyV2RecordsPerSecond)} records/s`,
      times(m.verifyV2RecordsPerSecond, p.verifyLinesPerSecond),
      "4× / 8×",
      met(m.verifyV2RecordsPerSecond / p.verifyLinesPerSecond, 4, 8),
    ],
    [
      `\`trace\` lifecycles of 4 KiB buffers, ${
        k(f.lifecycles)
      } requests, full verify, real log, whole process`,
      `${(p.traceLifecyclesPerSecond / 1000).toFixed(1)}k/s`,
      `${(m.traceLifecyclesPerSecond / 1000).toFixed(1)}k/s`,
      times(m.traceLifecyclesPerSecond, p.traceLifecyclesPerSecond),
      "5× / 10×",
      met(m.traceLifecyclesPerSecond / p.traceLifecyclesPerSecond, 5, 10),
    ],
    [
      "append, records/s without MAC (default durability)",
      `${k(p.appendRecordsPerSecond)}/s`,
      `${k(m.appendRecordsPerSecond)}/s`,
      times(m.appendRecordsPerSecond, p.appendRecordsPerSecond),
      "10×",
      met(m.appendRecordsPerSecond / p.appendRecordsPerSecond, 10, 10),
    ],
    [
      `CPU scrub + full verify of ${
        f.scrubBytes >> 20
      } MiB, effective rate vs the write roofline of the same \`sanitize-bench\` run`,
      `${p.scrubVerifyGBps} GB/s (8-sample check only)`,
      `${m.scrubVerifyGBps.toFixed(1)} of ${m.writeRooflineGBps.toFixed(1)} GB/s = ${
        pct.toFixed(0)
      }%`,
      "—",
      "50% / 70% of roofline",
      met(pct, 50, 70),
    ],
  ];
  return `# kvh vs the Python tool, side by side

Produced by \`deno task bench:compare\` on ${f.date}: Deno ${f.deno}, ${f.cpus} CPUs, median of
${f.runs} run(s)${f.quick ? " (--quick: smoke-test sizes, not a benchmark)" : ""}.
Load average ${f.loadBefore} before, ${f.loadAfter} after: figures taken while other jobs ran
are not comparable.
Native helpers: digests ${f.nativeDigests ? "loaded" : "absent (node:crypto)"}, CPU kernels ${
    f.nativeCpuKernels ? "loaded" : "absent (TS)"
  }.

Python tool column, from bench/python_tool_figures.json: ${p.source}

| work | Python tool | kvh | kvh / Python | target (accept / aim) | |
|---|---|---|---|---|---|
${rows.map((row) => `| ${row.join(" | ")} |`).join("\n")}
`;
}
