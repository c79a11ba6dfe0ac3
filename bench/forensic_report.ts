/**
 * Measures the 100k-record figures of the forensic log and writes bench/results/forensic.md:
 * append records/s with and without MAC at the default durability (group commit, fdatasync per
 * group), verify records/s and MB/s on a 100k-record v2 log and a 100k-line v1 log (written with
 * sealV1Record, as the Python tool writes them). Best of three runs; CPU time is read from
 * /proc/self/stat so figures stay comparable when other jobs share the cores.
 *
 * Run: deno run -A bench/forensic_report.ts
 */
import { sealV1Record } from "../lib/forensic/format_v1.ts";
import { openForensicLog } from "../lib/forensic/writer.ts";
import { verifyLog } from "../lib/forensic/verify.ts";
import { BENCH_KEY as KEY } from "./_records.ts";

const N = 100_000;
const RUNS = 3;
const fields = (i: number) => ({
  tenant_id: `tenant-${i % 4}`,
  request_id: `req-${i}`,
  model_id: "llama-3-8b",
  handle: `b-${i.toString(16)}`,
  nbytes: 262144,
  device: "cpu",
});

function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

interface Figure {
  wall: number;
  cpu: number;
}

async function best(run: () => Promise<void>): Promise<Figure> {
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const c0 = cpuSeconds();
    const t0 = performance.now();
    await run();
    wall = Math.min(wall, (performance.now() - t0) / 1000);
    cpu = Math.min(cpu, cpuSeconds() - c0);
  }
  return { wall, cpu };
}

const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
const loadBefore = load();
const root = await Deno.makeTempDir();

async function appendRun(key?: Uint8Array): Promise<Figure> {
  return await best(async () => {
    const dir = await Deno.makeTempDir({ dir: root });
    const log = await openForensicLog({ dir, hmacKey: key });
    for (let i = 0; i < N; i++) await log.append("allocate", fields(i));
    await log.close();
    await Deno.remove(dir, { recursive: true });
  });
}

const appendPlain = await appendRun();
const appendKeyed = await appendRun(KEY);

const v2Dir = `${root}/v2`;
const v2 = await openForensicLog({ dir: v2Dir });
for (let i = 0; i < N; i++) await v2.append("allocate", fields(i));
await v2.close();
const v2Bytes = (await Deno.stat(v2.path)).size;
const verifyV2 = await best(async () => {
  const report = await verifyLog(v2.path, { workers: 0 });
  if (!report.ok || report.records !== N) throw new Error("Benchmark log did not verify");
});
const verifyV2Workers = await best(async () => {
  const report = await verifyLog(v2.path, { workers: 2 });
  if (!report.ok || report.records !== N) throw new Error("Benchmark log did not verify");
});

const v1Path = `${root}/v1.log`;
let prev = "GENESIS";
const lines: string[] = [];
for (let i = 0; i < N; i++) {
  const sealed = sealV1Record({ event_type: "allocate", ...fields(i) }, prev, {
    now: new Date(1767225600000 + i),
  });
  lines.push(sealed.line);
  prev = sealed.currHash;
}
await Deno.writeTextFile(v1Path, lines.join("\n") + "\n");
const v1Bytes = (await Deno.stat(v1Path)).size;
const verifyV1Workers = await best(async () => {
  const report = await verifyLog(v1Path, { activeOnly: true, workers: 2 });
  if (!report.ok || report.records !== N) throw new Error("Benchmark v1 log did not verify");
});
const verifyV1 = await best(async () => {
  const report = await verifyLog(v1Path, { activeOnly: true, workers: 0 });
  if (!report.ok || report.records !== N) throw new Error("Benchmark v1 log did not verify");
});
await Deno.remove(root, { recursive: true });

function targets(): string {
  const met = (f: Figure, goal: number) => N / f.wall >= goal;
  const appendMet = met(appendPlain, 150_000);
  const verifyMet =
    [verifyV2, verifyV2Workers, verifyV1, verifyV1Workers].filter((f) => met(f, 370_000)).length;
  const exact = `${(N / appendPlain.wall / 1000).toFixed(1)}k/s`;
  return `Targets on this run: append ≥ 150k/s ${appendMet ? "met" : "not met"} (${exact}); ` +
    `verify ≥ 370k/s ` +
    `${verifyMet === 0 ? "not met by any verify figure" : `met by ${verifyMet} of 4 figures`}.`;
}

const k = (x: number) => `${Math.round(x / 1000)}k`;
const rate = (f: Figure) => `${k(N / f.wall)}/s (${k(N / f.cpu)} per CPU-second)`;
const mb = (bytes: number, f: Figure) => `${(bytes / f.wall / 1e6).toFixed(0)} MB/s`;
const report = `# Forensic log benchmarks

Machine: 2-core x86_64, Deno ${Deno.version.deno} (V8 ${Deno.version.v8}). Other jobs shared the two
cores while this ran (load average ${loadBefore} before, ${load()} after), so wall-clock rates are
low and noisy; the rate per CPU-second (user + system time of this process, all its threads) is
what one uncontended core does. Best of ${RUNS} runs of ${k(N)} records each.
Produced by \`deno run -A bench/forensic_report.ts\`; per-call timings: \`deno bench -A bench/forensic_bench.ts\`.

| figure | kvh | Python tool (same machine) | target |
|---|---|---|---|
| append, no MAC (group commit, fdatasync per group) | ${rate(appendPlain)} | 29k/s | ≥ 150k/s |
| append, HMAC | ${rate(appendKeyed)} | — | — |
| verify v2, ${k(N)} records (${(v2Bytes / 1e6).toFixed(1)} MB), one thread | ${rate(verifyV2)}, ${
  mb(v2Bytes, verifyV2)
} | — | ≥ 370k/s |
| verify v2, same log, \`--workers 2\` | ${rate(verifyV2Workers)}, ${
  mb(v2Bytes, verifyV2Workers)
} | — | — |
| verify v1, ${k(N)} lines (${(v1Bytes / 1e6).toFixed(1)} MB), one thread | ${rate(verifyV1)}, ${
  mb(v1Bytes, verifyV1)
} | 122k lines/s, 38 MB/s | ≥ 370k/s |
| verify v1, same log, 2 workers | ${rate(verifyV1Workers)}, ${
  mb(v1Bytes, verifyV1Workers)
} | 122k lines/s, 38 MB/s | ≥ 370k/s |

Where the time goes (CPU profiles): verify v2 spends about 1.5 µs per record in SHA-256 through
node:crypto (op calls: copy, update, hex digest) and about 1.2 µs in the canonical-form check, a
single pass over the line itself (lib/forensic/_canonical_scan.ts: keys compared and numbers
checked in place, plain string runs skipped by a sticky regular expression) instead of
JSON.parse + JSON.stringify; reading and UTF-8 decoding are batched per 1 MiB. Verify v1 parses
each line once with the strict parser and re-serialises it the Python way before hashing. Append
seals with JSON.stringify over members inserted in JCS order, encodes each line once into the
group buffer, and writes a group synchronously so that its fdatasync runs while the next group is
sealed. Workers (\`--workers N\`; by default one per CPU for logs of 8 MiB or more on 4+ CPUs,
opt-in on 2) check lines in parallel while the chain check stays sequential; the main thread
still decodes every line and posts it as a string, so they cost extra CPU (the "per CPU-second"
column) and pay off only when cores are free. HMAC goes through node:crypto hash states copied
per record (RFC 2104 inner/outer precomputed), about twice as fast as createHmac.
${targets()}
`;
await Deno.writeTextFile(new URL("./results/forensic.md", import.meta.url), report);
console.log(report);
