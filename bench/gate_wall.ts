/**
 * Wall time of `kvh gate` from process start to exit, the number CI pays on every build
 * (issue 4: at most the Python checker's 52 ms). Runs each variant `--runs` times, interleaved so
 * that load from other jobs on the machine spreads evenly, and prints the median and quartiles.
 *
 * Usage: deno run -A bench/gate_wall.ts [--runs 40] [--json]
 *
 * @module
 */
const FIXTURE = new URL("../tests/gate/fixtures/pass.json.txt", import.meta.url).pathname;
const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const HELLO = new URL("./_hello.ts", import.meta.url).pathname;

const POLICY = await Deno.makeTempFile({ suffix: ".json" });
await Deno.writeTextFile(POLICY, '{"coverage_pct_min": 99.9}');
const LOG = new URL("../tests/gate/fixtures/plain/kv_cache.log", import.meta.url).pathname;

const VARIANTS: Record<string, string[]> = {
  "deno baseline (console.log only)": ["run", "-A", HELLO],
  "kvh gate METRICS (fast path)": ["run", "-A", MAIN, "gate", FIXTURE],
  "kvh gate METRICS --json": ["run", "-A", MAIN, "gate", FIXTURE, "--json"],
  "kvh gate METRICS --policy FILE (loads zod)": [
    "run",
    "-A",
    MAIN,
    "gate",
    FIXTURE,
    "--policy",
    POLICY,
  ],
  "kvh gate METRICS --require-verified LOG (50 v1 records)": [
    "run",
    "-A",
    MAIN,
    "gate",
    FIXTURE,
    "--require-verified",
    LOG,
  ],
  "kvh gate -- METRICS (commander path)": ["run", "-A", MAIN, "gate", "--", FIXTURE],
};

function quantile(sorted: number[], q: number): number {
  const position = q * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

async function timeOnce(args: string[]): Promise<number> {
  const start = performance.now();
  const { code } = await new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "null" })
    .output();
  const elapsed = performance.now() - start;
  if (code !== 0) throw new Error(`Benchmark run failed: deno ${args.join(" ")} exited ${code}`);
  return elapsed;
}

const runsFlag = Deno.args.indexOf("--runs");
const runs = runsFlag >= 0 ? Number(Deno.args[runsFlag + 1]) : 40;
const samples = new Map<string, number[]>(Object.keys(VARIANTS).map((name) => [name, []]));
for (const args of Object.values(VARIANTS)) await timeOnce(args);
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(VARIANTS)) {
    samples.get(name)!.push(await timeOnce(args));
  }
}
const rows = [...samples].map(([name, times]) => {
  const sorted = times.toSorted((a, b) => a - b);
  return {
    variant: name,
    runs: sorted.length,
    median_ms: Number(quantile(sorted, 0.5).toFixed(1)),
    p25_ms: Number(quantile(sorted, 0.25).toFixed(1)),
    p75_ms: Number(quantile(sorted, 0.75).toFixed(1)),
  };
});
await Deno.remove(POLICY);
if (Deno.args.includes("--json")) {
  console.log(JSON.stringify(rows, null, 2));
} else {
  console.log("| variant | runs | median ms | p25 ms | p75 ms |\n|---|---|---|---|---|");
  for (const row of rows) {
    console.log(
      `| ${row.variant} | ${row.runs} | ${row.median_ms} | ${row.p25_ms} | ${row.p75_ms} |`,
    );
  }
}
