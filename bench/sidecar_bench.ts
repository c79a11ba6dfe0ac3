/**
 * Figures of the sidecar (`kvh trace --listen`, issue 11), measured against a real daemon in a
 * child process with its forensic log, the client in this process:
 *
 * 1. release of 64 blocks × 256 KiB (16 MiB) on CPU: scrub + full read-back + log + reply, p50
 *    and p99 of the round trip, and the protocol's share of it (round trip minus the daemon's
 *    own `duration_ms`, which covers checks, scrub, read-back and the log write); target < 10%;
 * 2. single-block releases of 16 KiB with 8 requests in flight from 2 connections (4 each):
 *    releases/s (target ≥ 10k/s on the 2-core machine) and p99 (target ≤ 2 ms), with the CPU
 *    time the daemon and this client spent per release (from /proc: both share the 2 cores).
 *
 * The engine's bytes are written into the blocks before every timed release, so each scrub
 * zeroes real data. Prints a Markdown report; the lead commits it as bench/results/sidecar.md.
 *
 * Usage: deno run -A bench/sidecar_bench.ts [--pool-dir /dev/shm] [--iterations 200] [--releases 40000]
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { percentile } from "../lib/metrics/percentile.ts";
import { SidecarClient } from "../lib/sidecar/mod.ts";
import { startListen } from "../tests/sidecar/_listen.ts";

const { values } = parseArgs({
  options: {
    "pool-dir": { type: "string", default: "/dev/shm" },
    iterations: { type: "string", default: "200" },
    releases: { type: "string", default: "40000" },
  },
});
const ITERATIONS = Number(values.iterations);
const RELEASES = Number(values.releases);
const KIB = 1024;

const poolDir = await Deno.makeTempDir({ dir: values["pool-dir"], prefix: "kvh-bench-" });
const daemon = await startListen([], { poolDir });
const socket = daemon.socket;

async function pool(
  kvh: SidecarClient,
  name: string,
  blocks: number,
  blockBytes: number,
): Promise<Deno.FsFile> {
  const path = join(poolDir, name);
  const file = await Deno.open(path, { read: true, write: true, create: true });
  await file.truncate(blocks * blockBytes);
  await kvh.request("register_pool", {
    pool: name,
    device: "cpu",
    path: await Deno.realPath(path),
    bytes: blocks * blockBytes,
    blocks,
    regions: [{ offset: 0, block_stride: blockBytes, block_bytes: blockBytes }],
  });
  return file;
}

const owner = (i: number) => ({ tenant_id: `t${i % 4}`, request_id: `r${i}`, model_id: "m" });
const ms = (xs: number[], q: number) => percentile([...xs].sort((a, b) => a - b), q);

// 1. 64 × 256 KiB.
const big = await SidecarClient.connect(socket);
const bigFile = await pool(big, "big", 64, 256 * KIB);
const tenantBytes = new Uint8Array(64 * 256 * KIB).fill(0x5a);
const blocks64 = Array.from({ length: 64 }, (_, i) => i);
const roundTrips: number[] = [];
const inside: number[] = [];
for (let i = 0; i < ITERATIONS + 5; i++) {
  await bigFile.seek(0, Deno.SeekMode.Start);
  for (let done = 0; done < tenantBytes.length;) {
    done += await bigFile.write(tenantBytes.subarray(done));
  }
  const { handle } = await big.request("assign", { pool: "big", blocks: blocks64, ...owner(i) });
  const started = performance.now();
  const released = await big.release(handle as string);
  const elapsed = performance.now() - started;
  if (released.coverage_pct !== 100) throw new Error(`Coverage ${released.coverage_pct}`);
  if (i < 5) continue; // warm-up
  roundTrips.push(elapsed);
  inside.push(released.duration_ms);
}
const protocolShare = roundTrips.reduce((n, t, i) => n + (t - inside[i]!), 0) /
  roundTrips.reduce((n, t) => n + t, 0);

// 2. 16 KiB single-block releases, 8 in flight from 2 connections.
const BLOCKS = 1024;
const clients = await Promise.all([0, 1].map(() => SidecarClient.connect(socket)));
const files = await Promise.all(clients.map((c, i) => pool(c, `small${i}`, BLOCKS, 16 * KIB)));
const latencies: number[] = [];
let elapsedSmall = 0;
let daemonCpuS = 0;
let clientCpuS = 0;
// User + system CPU seconds of a process so far (Linux /proc; 100 ticks a second).
function cpuSeconds(pid: number | "self"): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
for (let done = 0; done < RELEASES; done += 2 * BLOCKS) {
  // Untimed: the engine writes its bytes and assigns one block per request.
  const handles = await Promise.all(clients.map(async (kvh, c) => {
    await files[c]!.seek(0, Deno.SeekMode.Start);
    await files[c]!.write(new Uint8Array(BLOCKS * 16 * KIB).fill(0xa5));
    return await Promise.all(
      Array.from(
        { length: BLOCKS },
        (_, b) => kvh.request("assign", { pool: `small${c}`, blocks: [b], ...owner(b) }),
      ),
    );
  }));
  const daemonCpu = cpuSeconds(daemon.child.pid);
  const clientCpu = cpuSeconds("self");
  const started = performance.now();
  await Promise.all(clients.map(async (kvh, c) => {
    let next = 0;
    const lane = async () => {
      while (next < BLOCKS) {
        const handle = handles[c]![next++]!.handle as string;
        const t0 = performance.now();
        await kvh.release(handle);
        latencies.push(performance.now() - t0);
      }
    };
    await Promise.all([lane(), lane(), lane(), lane()]);
  }));
  elapsedSmall += performance.now() - started;
  daemonCpuS += cpuSeconds(daemon.child.pid) - daemonCpu;
  clientCpuS += cpuSeconds("self") - clientCpu;
}

for (const kvh of [big, ...clients]) await kvh.close();
const status = await daemon.stop();
bigFile.close();
for (const file of files) file.close();
await Deno.remove(poolDir, { recursive: true });
await Deno.remove(daemon.dir, { recursive: true });

const load = Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
console.log(`# Sidecar (kvh trace --listen)

Machine: ${Deno.build.target}, ${navigator.hardwareConcurrency} CPUs, load ${load}; pools in ${
  values["pool-dir"]
}; daemon exit ${status.code}.

| figure | value | target |
| --- | --- | --- |
| release 64 × 256 KiB (16 MiB): round trip p50 | ${ms(roundTrips, 50).toFixed(2)} ms | |
| release 64 × 256 KiB: round trip p99 | ${ms(roundTrips, 99).toFixed(2)} ms | |
| release 64 × 256 KiB: daemon time p50 (checks, scrub, read-back, log) | ${
  ms(inside, 50).toFixed(2)
} ms | |
| release 64 × 256 KiB: protocol share of the round trip | ${
  (protocolShare * 100).toFixed(1)
}% | < 10% |
| 16 KiB releases, 8 in flight from 2 connections | ${
  Math.round(latencies.length / (elapsedSmall / 1000))
} releases/s | ≥ 10,000/s |
| 16 KiB releases: p50 | ${ms(latencies, 50).toFixed(2)} ms | |
| 16 KiB releases: p99 | ${ms(latencies, 99).toFixed(2)} ms | ≤ 2 ms |
| 16 KiB releases: CPU per release, daemon / client | ${
  (daemonCpuS * 1e6 / latencies.length).toFixed(0)
} / ${(clientCpuS * 1e6 / latencies.length).toFixed(0)} µs | |

${ITERATIONS} large releases after 5 warm-up ones; ${latencies.length} small releases.`);
