/**
 * `kvh sanitize-bench`: zeroization and verification throughput per device and buffer size,
 * beside the device's own roofline measured in the same run (DESIGN.md §3). Exit 0 when every
 * timed scrub left zeros, 2 when one did not, 1 for usage errors and missing devices.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { KvhError } from "../lib/errors.ts";
import { ROOFLINE_METHODS, rooflineFor, ZERO_METHODS } from "../lib/bench/roofline.ts";
import { runSanitizeBench, type SanitizeBenchReport } from "../lib/bench/sanitize_bench.ts";
import { formatSize, parseBlocks, parseSize, parseSizes } from "../lib/bench/sizes.ts";
import {
  DEVICE_CHOICES,
  type DeviceChoice,
  openSanitizer,
} from "../lib/sanitize/open_sanitizer.ts";
import { envString, numberOption, revokePermissionsExcept, runAction } from "./_common.ts";

/** Sizes of a default run: one in cache, one at the LLC, two above it; < 30 s on a 2-core box. */
const DEFAULT_SIZES = "4KiB,1MiB,64MiB,1GiB";
const LLC_SIZE_FILE = "/sys/devices/system/cpu/cpu0/cache/index3/size";

/** Builds the `sanitize-bench` subcommand. */
export function sanitizeBenchCommand() {
  return new Command("sanitize-bench")
    .description(
      "Measure zeroing and verification throughput and per-buffer scrub latency on a device, " +
        "beside the device's own roofline measured in the same run (CPU: " +
        `${ROOFLINE_METHODS.cpu.write} and ${ROOFLINE_METHODS.cpu.read}; ` +
        `CUDA: ${ROOFLINE_METHODS.cuda.write} and ${ROOFLINE_METHODS.cuda.copy}; ` +
        `WebGPU: ${ROOFLINE_METHODS.webgpu.copy}).\n\n` +
        "Exit codes: 0 every scrub left zeros, 2 a scrub left non-zero bytes, 1 usage error or " +
        "missing device. Progress goes to stderr.",
    )
    .addOption(
      new Option(
        "--device <device>",
        "device to benchmark (auto: CUDA, then a hardware WebGPU adapter, then CPU)",
      )
        .choices(DEVICE_CHOICES as DeviceChoice[])
        .default("auto" as DeviceChoice),
    )
    .option("--sizes <list>", "comma-separated buffer sizes, e.g. 4KiB,64MiB,1GiB", DEFAULT_SIZES)
    .addOption(
      new Option(
        "--verify <mode>",
        "verification after each scrub (none: one untimed check per size)",
      )
        .choices(["full", "sample", "none"] as const)
        .default("full" as const),
    )
    .option("--double-pass", "zero each buffer twice before verifying")
    .option(
      "--second-pass",
      "with --verify full: read back after the whole buffer is zeroed, not chunk by chunk while in cache",
    )
    .option(
      "--iterations <n>",
      "timed scrubs per size (default: scaled by size, 3 to 200)",
      numberOption("--iterations", { integer: true, min: 1 }),
    )
    .option(
      "--blocks <countxsize>",
      "small-block mode on CUDA, e.g. 16384x64KiB: per-block launches against one batched launch",
    )
    .addOption(
      new Option(
        "--cuda-zero <method>",
        `how CUDA zeroes: memset (${ZERO_METHODS.cuda.memset}) or kernel ` +
          `(${ZERO_METHODS.cuda.kernel})`,
      )
        .choices(["memset", "kernel"] as const)
        .default("memset" as const),
    )
    .option(
      "--allow-software-webgpu",
      "let --device auto use a software WebGPU adapter (lavapipe) instead of the CPU",
    )
    .option("--json", "print the report as one JSON document")
    .action((options) =>
      runAction(async () => {
        const sizes = parseSizes(options.sizes);
        const blocks = options.blocks === undefined ? undefined : parseBlocks(options.blocks);
        const cudaLibraryPath = envString("KVH_CUDA_LIB");
        const llcBytes = await readLlcBytes();
        await revokePermissionsExcept(["read", "ffi"]);
        const opened = await openSanitizer(options.device, {
          cudaLibraryPath,
          allowSoftwareWebGpu: options.allowSoftwareWebgpu ?? false,
          cudaZeroMethod: options.cudaZero,
        });
        if (opened.note !== undefined) console.error(`kvh: ${opened.note}`);
        const { sanitizer } = opened;
        try {
          if (blocks !== undefined && opened.device !== "cuda") {
            throw new KvhError(
              "flag_invalid",
              `Invalid --blocks: small-block mode needs --device cuda, got ${opened.device}`,
            );
          }
          const report = await runSanitizeBench(sanitizer, rooflineFor(sanitizer), {
            sizes,
            verify: options.verify,
            doublePass: options.doublePass ?? false,
            secondPass: options.secondPass ?? false,
            iterations: options.iterations,
            cacheBytes: cacheBytesOf(sanitizer, llcBytes),
            blocks,
            onProgress: (message) => console.error(`kvh: ${message}`),
          });
          for (const warning of report.warnings) console.error(`kvh: warning: ${warning}`);
          const device = describeDevice(sanitizer);
          if (options.json) console.log(JSON.stringify({ ...device, ...report }));
          else console.log(formatReport(device, report));
          return report.ok ? 0 : 2;
        } finally {
          await sanitizer.close();
        }
      })
    );
}

/** The CPU's last-level cache from sysfs (`32768K`), or undefined where it cannot be read. */
async function readLlcBytes(): Promise<number | undefined> {
  try {
    return parseSize((await Deno.readTextFile(LLC_SIZE_FILE)).trim());
  } catch {
    return undefined;
  }
}

function cacheBytesOf(sanitizer: object, llcBytes: number | undefined): number | undefined {
  const device = (sanitizer as { device: string }).device;
  if (device === "cpu") return llcBytes;
  const info = (sanitizer as { info?: { l2CacheBytes?: number } }).info;
  return info?.l2CacheBytes;
}

function describeDevice(sanitizer: object): { deviceName: string; zeroMethod: string } {
  const named = sanitizer as {
    adapterName?: string;
    info?: { name?: string };
    device: string;
    kernels?: string;
    zeroMethod?: keyof typeof ZERO_METHODS.cuda;
  };
  let zeroMethod: string = ZERO_METHODS.webgpu;
  if (named.device === "cpu") zeroMethod = ZERO_METHODS.cpu(named.kernels ?? "ts");
  else if (named.device === "cuda") zeroMethod = ZERO_METHODS.cuda[named.zeroMethod ?? "memset"];
  return {
    deviceName: named.info?.name ?? named.adapterName ?? `${named.device} (${Deno.build.arch})`,
    zeroMethod,
  };
}

function fixed(value: number | null | undefined, digits = 2): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? "-"
    : value.toFixed(digits);
}

/** The report as an aligned text table. */
function formatReport(
  device: { deviceName: string; zeroMethod: string },
  report: SanitizeBenchReport,
): string {
  const header = [
    "size",
    "zero GB/s",
    "% roof",
    "verify GB/s",
    "% roof",
    "scrub+verify p50 ms",
    "p95 ms",
    "% roof",
    "roofline GB/s",
    "left",
  ];
  const rows = report.results.map((r) => [
    r.size,
    fixed(r.zero.gbps),
    fixed(r.zero.pctOfRoofline, 0),
    fixed(r.verify?.gbps),
    fixed(r.verify?.pctOfRoofline, 0),
    fixed(r.scrubVerify.p50Ms, 3),
    fixed(r.scrubVerify.p95Ms, 3),
    fixed(r.scrubVerify.pctOfRoofline, 0),
    [
      r.roofline.writeGBps !== undefined ? `write ${fixed(r.roofline.writeGBps)}` : "",
      r.roofline.readGBps !== undefined ? `read ${fixed(r.roofline.readGBps)}` : "",
      r.roofline.copyGBps !== undefined ? `copy ${fixed(r.roofline.copyGBps)}` : "",
    ].filter(Boolean).join(", "),
    String(r.nonZeroAfterScrub),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((
      cell,
      i,
    ) => (i === 0 || i === 8 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join("  ").trimEnd();
  const lines = [
    `${report.device}: ${device.deviceName} — zero with ${device.zeroMethod}, verify ${report.verify}${
      report.doublePass ? ", double pass" : ""
    }${report.readBack === null ? "" : `, read-back ${report.readBack}`}`,
    line(header),
    ...rows.map(line),
  ];
  const first = report.results[0];
  if (first !== undefined) {
    const methods = Object.entries(first.roofline.methods).map(([k, v]) => `${k}: ${v}`).join("; ");
    lines.push(`roofline: ${methods}`);
  }
  if (report.blocks !== undefined) {
    const b = report.blocks;
    lines.push(
      `blocks ${b.count}x${formatSize(b.blockBytes)}: per-block ${
        fixed(b.perBlockSeconds * 1000, 1)
      } ms, ` +
        `batched ${fixed(b.batchedSeconds * 1000, 1)} ms (${
          fixed(b.speedupOverPerBlock, 1)
        }x faster), ` +
        `one buffer ${fixed(b.wholePoolSeconds * 1000, 1)} ms (batched ${
          fixed(b.batchedVsWholePool, 2)
        }x of it)`,
    );
  }
  lines.push(
    report.ok ? "every scrub left zeros" : "SCRUB FAILED: non-zero bytes left (column left)",
  );
  return lines.join("\n");
}
