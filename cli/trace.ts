/**
 * `kvh trace` (DESIGN.md §3): the main job. Replays a workload (synthetic multi-tenant by
 * default, or JSONL) through the tracer, and leaves the evidence behind: the forensic log,
 * `coverage.json` and `metrics.prom`, then prints a summary.
 *
 * Exit codes: 0 when the run completed — quarantines, leaks and low coverage included, since
 * judging them is `kvh gate`'s job on the metrics written; 1 for bad flags, a malformed
 * workload (file:line), a device that cannot be opened or a log that cannot be written; 130 /
 * 143 after SIGINT / SIGTERM. A run that does not complete still closes its log and writes its
 * metrics, marked `run_status` `failed` or `interrupted` so that the gate fails them.
 *
 * @module
 */
import { join } from "../lib/io/path.ts";
import { KvhError } from "../lib/errors.ts";
import { type ForensicLog, openForensicLog } from "../lib/forensic/writer.ts";
import { rekeyLog } from "../lib/forensic/epoch_key.ts";
import { loadNativeDigests } from "../lib/forensic/native_digest.ts";
import { loadNativeCpuKernels } from "../lib/sanitize/native.ts";
import { AnomalyMonitor } from "../lib/anomaly/mod.ts";
import { MetricsCollector, toPrometheusText } from "../lib/metrics/mod.ts";
import type { MetricsSnapshot, RunStatus } from "../lib/metrics/types.ts";
import {
  type DeviceChoice,
  type OpenedSanitizer,
  openSanitizer,
} from "../lib/sanitize/open_sanitizer.ts";
import type { VerifyMode } from "../lib/sanitize/types.ts";
import { CacheTracer, type TracerStats } from "../lib/tracer/mod.ts";
import {
  addMacStateOptions,
  macStateFileOf,
  type MacStateFlags,
  resolveMacKeys,
} from "./_mac_options.ts";
import {
  addCheckpointOptions,
  checkpointFileOf,
  type CheckpointFlags,
  resolveCheckpointer,
} from "./_checkpoint_options.ts";
import {
  parseWorkload,
  runWorkload,
  syntheticWorkload,
  type WorkloadRequest,
  type WorkloadSummary,
} from "../lib/workload/mod.ts";
import {
  booleanSetting,
  describeIoError,
  envString,
  guardOutputs,
  invalidSetting,
  numberOption,
  numberSetting,
  printError,
  resolveHmacKey,
  revokePermissionsExcept,
  runAction,
  setting,
  settingErrorCode,
  type SettingParser,
  textSetting,
  withEnv,
  writeOutput,
} from "./_common.ts";
import { parseThresholdText, thresholdSpec } from "../lib/gate/thresholds.ts";

/**
 * Hand-offs per buffer `kvh trace` allows by default. The library keeps the Python tool's
 * strict 0 (any reuse quarantines); a serving pool reuses buffers by design, and 1000 is more
 * than a default run ever reaches, so a healthy run shows no quarantines.
 */
export const TRACE_DEFAULT_MAX_REUSE = 1000;

/**
 * Smallest rotation size `--max-log-bytes` takes: a page, a dozen records, so a typo such as
 * `--max-log-bytes 64` cannot turn every record into a file of its own.
 */
const MIN_LOG_BYTES = 4096;

const DEFAULTS = {
  device: "cpu",
  tenants: 4,
  requests: 400,
  tokens: 32,
  seed: 1,
  concurrency: 1,
  verify: "full",
  logDir: "forensics",
  logFile: "kv_cache.log",
  coverageThreshold: 99.9,
  verifySamples: 4096,
  maxLogBytes: 64 * 1024 * 1024,
} as const;

interface TraceFlags extends CheckpointFlags, MacStateFlags {
  device: string;
  workload?: string;
  tenants?: number;
  requests?: number;
  tokens?: number;
  seed?: number;
  concurrency?: number;
  logDir?: string;
  logFile?: string;
  maxLogBytes?: number;
  metricsJson?: string;
  metricsProm?: string;
  verify: string;
  verifySamples?: number;
  doublePass?: boolean;
  ttlSec?: number;
  maxReuse?: number;
  coverageThreshold?: number;
  hmacKeyFile?: string;
  json?: boolean;
  listen?: string;
  poolDir?: string[];
}

const VERIFY_SAMPLES = numberSetting({ integer: true, min: 1 });
const TTL_SEC = numberSetting();
const MAX_REUSE = numberSetting({ integer: true });
const COVERAGE_PCT: SettingParser<number> = (text, source) =>
  parseThresholdText(thresholdSpec("coverageMinPct"), text, source, settingErrorCode(source));

/** Builds the `trace` subcommand. */
export async function traceCommand() {
  const { Command, Option } = await import("@commander-js/extra-typings");
  const command = new Command("trace")
    .description(
      "Run a workload through the tracer and write the evidence: the forensic log, " +
        "coverage.json and metrics.prom. With no options: a synthetic multi-tenant workload " +
        "on the CPU. Exits 0 when the run completed (kvh gate judges the metrics), 1 on bad " +
        "input or I/O failure, 130/143 after SIGINT/SIGTERM (the log is flushed and the " +
        "metrics say run_status interrupted).",
    )
    .addOption(
      new Option("--device <device>", "sanitizer device").choices(["cpu", "cuda", "webgpu", "auto"])
        .default(DEFAULTS.device),
    )
    .option("--workload <file>", "replay JSONL requests from a file, or - for stdin")
    .option(
      "--tenants <n>",
      `synthetic tenants (default ${DEFAULTS.tenants})`,
      numberOption("--tenants", { integer: true, min: 1 }),
    )
    .option(
      "--requests <n>",
      `synthetic requests (default ${DEFAULTS.requests})`,
      numberOption("--requests", { integer: true, min: 1 }),
    )
    .option(
      "--tokens <n>",
      `most tokens per synthetic request, in blocks of 16 (default ${DEFAULTS.tokens})`,
      numberOption("--tokens", { integer: true, min: 1 }),
    )
    .option(
      "--seed <n>",
      `synthetic workload seed (default ${DEFAULTS.seed})`,
      numberOption("--seed", { integer: true, min: 0 }),
    )
    .option(
      "--concurrency <n>",
      `requests in flight (default ${DEFAULTS.concurrency})`,
      numberOption("--concurrency", { integer: true, min: 1 }),
    )
    .option("--log-dir <dir>", withEnv("forensic log directory", "LOG_DIR", DEFAULTS.logDir))
    .option("--log-file <name>", withEnv("forensic log file name", "LOG_FILE", DEFAULTS.logFile))
    .option(
      "--max-log-bytes <n>",
      withEnv(
        `rotate the active log file before it would grow past n bytes, a decimal of at least ` +
          MIN_LOG_BYTES,
        "LOG_MAX_BYTES",
        `${DEFAULTS.maxLogBytes} (64 MiB)`,
      ),
      (text) => parseLogBytes(text, "--max-log-bytes"),
    )
    .option(
      "--metrics-json <file>",
      "metrics JSON, the Python tool's coverage.json keys and kvh's (default <log-dir>/coverage.json)",
    )
    .option(
      "--metrics-prom <file>",
      withEnv("Prometheus textfile", "METRICS_FILE", "<log-dir>/metrics.prom"),
    )
    .addOption(
      new Option(
        "--verify <mode>",
        "read-back after each scrub: full, sample, or none (none is unverified: coverage reported as 0)",
      ).choices(["full", "sample", "none"]).default(DEFAULTS.verify),
    )
    .option(
      "--verify-samples <n>",
      withEnv("positions read in sample mode", "KV_VERIFY_SAMPLES_DEFAULT", DEFAULTS.verifySamples),
      (text) => VERIFY_SAMPLES(text, "--verify-samples"),
    )
    .option(
      "--double-pass",
      withEnv(
        "zero every buffer twice (the variable takes 1/true/yes/on or 0/false/no/off)",
        "KV_DOUBLE_PASS_DEFAULT",
        "off",
      ),
    )
    .option(
      "--ttl-sec <s>",
      withEnv(
        "buffer TTL from allocation; 0 or less quarantines at first use",
        "KV_DEFAULT_TTL_SEC",
        "none",
      ),
      (text) => TTL_SEC(text, "--ttl-sec"),
    )
    .option(
      "--max-reuse <n>",
      withEnv(
        "hand-offs per buffer; 0 quarantines any reuse, negative is unlimited",
        "KV_DEFAULT_MAX_REUSE",
        TRACE_DEFAULT_MAX_REUSE,
      ),
      (text) => MAX_REUSE(text, "--max-reuse"),
    )
    .option(
      "--coverage-threshold <pct>",
      withEnv(
        "verified coverage a free needs, percent",
        "KV_COVERAGE_THRESHOLD",
        DEFAULTS.coverageThreshold,
      ),
      (text) => COVERAGE_PCT(text, "--coverage-threshold"),
    )
    .option(
      "--hmac-key-file <file>",
      withEnv("HMAC key file of the log (0600)", "FORENSIC_HMAC_SECRET"),
    )
    .option("--json", "print the summary as one JSON document")
    .option(
      "--listen <unix:PATH>",
      "sidecar mode: serve engines on a Unix socket and scrub their own memory (docs/protocol.md)",
    )
    .option(
      "--pool-dir <dir>",
      "with --listen: a directory CPU pools must resolve under; repeatable (default /dev/shm)",
      (dir: string, dirs: string[] = []) => [...dirs, dir],
    );
  return addMacStateOptions(addCheckpointOptions(command)).action(async (flags) => {
    await runAction(() => runTrace(flags));
  });
}

/** Flags with a value that {@linkcode runTraceFast} takes, and where it puts them. */
const FAST_VALUE_FLAGS = { "--workload": "workload", "--log-dir": "logDir" } as const;

/**
 * Runs `kvh trace` without commander when its arguments are only `--workload FILE`,
 * `--log-dir DIR` and `--json` (the main job and a workload replay): loading commander took
 * ~50 ms, a twentieth of a 20,000-request trace. Anything else resolves to `undefined`, for the
 * commander tree to parse (help, usage errors, every other flag).
 *
 * @param args The arguments after `trace`.
 * @returns The exit code, or `undefined`.
 */
export async function runTraceFast(args: readonly string[]): Promise<number | undefined> {
  const flags: TraceFlags = { device: DEFAULTS.device, verify: DEFAULTS.verify };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--json") {
      flags.json = true;
      continue;
    }
    const value = args[i + 1];
    if (!Object.hasOwn(FAST_VALUE_FLAGS, arg) || value === undefined) return undefined;
    // A value such as `--json` after a flag is a usage mistake commander words; `-` is stdin.
    if (value.startsWith("-") && value !== "-") return undefined;
    flags[FAST_VALUE_FLAGS[arg as keyof typeof FAST_VALUE_FLAGS]] = value;
    i++;
  }
  await runAction(() => runTrace(flags));
  return typeof Deno.exitCode === "number" ? Deno.exitCode : 0;
}

async function runTrace(flags: TraceFlags): Promise<number> {
  refuseIgnoredFlags(flags);
  const logDir = setting(flags.logDir, "LOG_DIR", textSetting) ?? DEFAULTS.logDir;
  const logFile = setting(flags.logFile, "LOG_FILE", textSetting) ?? DEFAULTS.logFile;
  const maxLogBytes = setting(flags.maxLogBytes, "LOG_MAX_BYTES", parseLogBytes) ??
    DEFAULTS.maxLogBytes;
  const metricsJson = flags.metricsJson ?? join(logDir, "coverage.json");
  const metricsProm = setting(flags.metricsProm, "METRICS_FILE", textSetting) ??
    join(logDir, "metrics.prom");
  await guardOutputs(join(logDir, logFile), {
    "--metrics-json": metricsJson,
    "--metrics-prom": metricsProm,
    "--checkpoint-file": checkpointFileOf(flags),
    "--mac-state-file": macStateFileOf(flags),
  });
  const coverageThreshold =
    setting(flags.coverageThreshold, "KV_COVERAGE_THRESHOLD", COVERAGE_PCT) ??
      DEFAULTS.coverageThreshold;
  const verifySamples = setting(flags.verifySamples, "KV_VERIFY_SAMPLES_DEFAULT", VERIFY_SAMPLES) ??
    DEFAULTS.verifySamples;
  const doublePass = setting(flags.doublePass, "KV_DOUBLE_PASS_DEFAULT", booleanSetting) ?? false;
  const ttlSec = setting(flags.ttlSec, "KV_DEFAULT_TTL_SEC", TTL_SEC);
  const maxReuse = setting(flags.maxReuse, "KV_DEFAULT_MAX_REUSE", MAX_REUSE) ??
    TRACE_DEFAULT_MAX_REUSE;
  const hmacKey = await resolveHmacKey(flags.hmacKeyFile);
  const observe = await resolveCheckpointer(flags);
  const macKeys = await resolveMacKeys(flags, hmacKey);
  const device = flags.device as DeviceChoice;
  const cudaLibraryPath = envString("KVH_CUDA_LIB");
  if (flags.listen !== undefined) {
    // The sidecar's modules load only for --listen: a workload trace starts without them.
    const { runTraceListen } = await import("./_trace_listen.ts");
    return await runTraceListen({
      listen: flags.listen,
      poolDirs: flags.poolDir ?? [],
      logDir,
      logFile,
      maxLogBytes,
      metricsJson,
      metricsProm,
      coverageThreshold,
      doublePass,
      verify: flags.verify,
      hmacKey,
      macKeys,
      observe,
      device,
      cudaLibraryPath,
      flags: { ...flags },
    });
  }
  const keep: Deno.PermissionName[] = device === "cpu"
    ? ["read", "write"]
    : ["read", "write", "ffi"];
  // Loaded before ffi is revoked: the writer then hashes each record in one native call
  // (node:crypto otherwise, where the library is not built), and the CPU sanitizer reads
  // buffers back through libkvh_cpu (node:buffer's memcmp otherwise).
  loadNativeDigests();
  if (device === "cpu") loadNativeCpuKernels();
  await revokePermissionsExcept(keep);

  // Installed before anything is opened: from here on a signal stops the run in order.
  const stop = watchStopSignals();
  let workload: OpenedWorkload | undefined;
  let opened: OpenedSanitizer | undefined;
  let log: ForensicLog | undefined;
  let tracer: CacheTracer | undefined;
  let summary: WorkloadSummary | undefined;
  let failure: unknown;
  try {
    workload = await openWorkload(flags);
    opened = await openSanitizer(device, { cudaLibraryPath });
    log = await openForensicLog({
      dir: logDir,
      file: logFile,
      hmacKey,
      maxBytes: maxLogBytes,
      // Group commit as wide as the durability policy's bounds allow (critical events are
      // fsynced before their append returns whatever these are): only one group is fsynced at a
      // time and the append that fills the next one waits for it, so a group of 256 records
      // capped a run at 256 records per fdatasync (~8k lifecycles/s at 7 ms per fdatasync).
      commitDelayMs: 50,
      commitRecords: 4096,
      observe,
      macKeys,
    });
    if (macKeys !== undefined) await rekeyLog(log, macKeys);
    // What opening the log recovered from (a torn tail, a missing active file) is said, not hidden.
    for (const notice of log.notices) console.error(`kvh: ${notice}`);
    tracer = new CacheTracer({
      sanitizer: opened.sanitizer,
      audit: log,
      coverageThresholdPct: coverageThreshold,
      verify: flags.verify as VerifyMode,
      verifySamples,
      doublePass,
      defaultMaxReuse: maxReuse,
      defaultTtlSec: ttlSec,
      anomalies: new AnomalyMonitor(),
    });
    if (opened.note) console.error(`kvh: ${opened.note}`);
    const progress = await startProgress(workload.total);
    try {
      summary = await runWorkload(tracer, opened.sanitizer, workload.requests, {
        concurrency: flags.concurrency ?? DEFAULTS.concurrency,
        onProgress: progress.update,
        signal: stop.signal,
      });
    } finally {
      progress.stop();
    }
  } catch (error) {
    failure = error;
  }
  // The evidence is written whatever happened: the log so far must still verify, and the
  // metrics must say what was done before the failure. Closing the workload ends a read that
  // may still be pending (stdin after a signal), which would otherwise keep the process alive.
  for (
    const close of [
      () => workload?.close(),
      () => tracer?.close(),
      () => log?.close(),
      () => opened?.sanitizer.close(),
    ]
  ) {
    try {
      await close();
    } catch (error) {
      failure ??= error;
    }
  }
  const runStatus: RunStatus = failure !== undefined
    ? "failed"
    : stop.received !== undefined
    ? "interrupted"
    : "completed";
  // A log held by another writer means another run owns these metrics files: leave them be.
  const ownsEvidence = !(failure instanceof KvhError && failure.code === "log_locked");
  const metrics = tracer?.metrics(runStatus) ??
    new MetricsCollector({
      thresholdPct: coverageThreshold,
      verifyMode: flags.verify,
      device: opened?.device ?? device,
    }).snapshot(NO_BUFFERS, runStatus);
  try {
    if (ownsEvidence) await writeEvidence(metricsJson, metricsProm, metrics);
  } catch (error) {
    // The run's own failure is the one to report; the metrics one is said first.
    if (failure === undefined) throw error;
    printError(error);
  } finally {
    // Only now: a second signal while the evidence is written must not cut it short.
    stop.dispose();
  }
  if (failure !== undefined) throw failure;
  if (stop.received !== undefined) {
    console.error(
      `kvh: Interrupted: stopped taking requests after ${stop.received}; ` +
        `the log and metrics (run_status interrupted) are written`,
    );
    return SIGNAL_EXIT_CODES[stop.received];
  }
  const files = {
    log: join(logDir, logFile),
    metrics_json: metricsJson,
    metrics_prom: metricsProm,
  };
  if (flags.json) {
    console.log(
      JSON.stringify(
        { summary, device: opened!.device, head: log!.head, files, metrics },
        null,
        2,
      ),
    );
  } else {
    console.log(formatSummary(summary!, metrics, opened!.device, files, log!.head?.seq));
  }
  return 0;
}

// A flag that would change nothing is a usage error: the user meant something else.
function refuseIgnoredFlags(flags: TraceFlags): void {
  if (flags.workload !== undefined) {
    const synthetic = (["tenants", "requests", "tokens", "seed"] as const).find((name) =>
      flags[name] !== undefined
    );
    if (synthetic !== undefined) {
      throw new KvhError(
        "flag_invalid",
        `Invalid --${synthetic}: it sizes the synthetic workload and cannot be used with --workload`,
      );
    }
  }
  if (flags.verifySamples !== undefined && flags.verify !== "sample") {
    throw new KvhError(
      "flag_invalid",
      `Invalid --verify-samples: it applies to --verify sample only, got --verify ${flags.verify}`,
    );
  }
}

// Decimal digits only: Number() would also take `0x1000`, `1e4` and `4096.0`.
function parseLogBytes(text: string, source: string): number {
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < MIN_LOG_BYTES) {
    throw invalidSetting(
      source,
      `expected a decimal byte count of at least ${MIN_LOG_BYTES}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** Exit codes of a run stopped by a signal (DESIGN.md §3): 128 + the signal's number. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

const NO_BUFFERS: TracerStats = {
  totalBuffers: 0,
  activeBuffers: 0,
  unsanitizedBuffers: 0,
  quarantinedBuffers: 0,
  freedBuffers: 0,
};

/** Turns SIGINT and SIGTERM into an abort, remembering the first signal received. */
function watchStopSignals() {
  const abort = new AbortController();
  let received: StopSignal | undefined;
  const listeners = (Object.keys(SIGNAL_EXIT_CODES) as StopSignal[]).map((name) => {
    const listener = () => {
      received ??= name;
      abort.abort();
    };
    Deno.addSignalListener(name, listener);
    return [name, listener] as const;
  });
  return {
    signal: abort.signal,
    get received() {
      return received;
    },
    dispose() {
      for (const [name, listener] of listeners) Deno.removeSignalListener(name, listener);
    },
  };
}

interface OpenedWorkload {
  requests: Iterable<WorkloadRequest> | AsyncIterable<WorkloadRequest>;
  total?: number;
  /** Ends any pending read of the source. */
  close(): void;
}

async function openWorkload(flags: TraceFlags): Promise<OpenedWorkload> {
  if (flags.workload === undefined) {
    const requests = flags.requests ?? DEFAULTS.requests;
    return {
      requests: syntheticWorkload({
        tenants: flags.tenants ?? DEFAULTS.tenants,
        requests,
        tokens: flags.tokens ?? DEFAULTS.tokens,
        seed: flags.seed ?? DEFAULTS.seed,
      }),
      total: requests,
      close: () => {},
    };
  }
  if (flags.workload === "-") {
    return {
      requests: parseWorkload(Deno.stdin, "-"),
      close: () => closeQuietly(Deno.stdin),
    };
  }
  try {
    const file = await Deno.open(flags.workload, { read: true });
    // Opening a directory succeeds; reading it would fail later as a bare "Is a directory".
    if ((await file.stat()).isDirectory) {
      file.close();
      throw new Deno.errors.IsADirectory(flags.workload);
    }
    return {
      requests: parseWorkload(file, flags.workload),
      close: () => closeQuietly(file),
    };
  } catch (error) {
    throw new KvhError(
      "workload_unreadable",
      `Cannot read --workload ${flags.workload}: ${describeIoError(error)}`,
      { cause: error },
    );
  }
}

// A source read to its end was closed by its stream already.
function closeQuietly(resource: { close(): void }) {
  try {
    resource.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

/** Writes the metrics JSON and Prometheus files (also the sidecar's, cli/_trace_listen.ts). */
export async function writeEvidence(
  jsonPath: string,
  promPath: string,
  metrics: MetricsSnapshot,
) {
  await writeOutput("--metrics-json", jsonPath, JSON.stringify(metrics, null, 2) + "\n");
  await writeOutput("--metrics-prom", promPath, toPrometheusText(metrics));
}

// A bar on a terminal; otherwise a plain line every 10% (or every 1000 requests when the total
// is unknown), so CI logs stay readable. Progress goes to stderr: stdout carries the result.
async function startProgress(total: number | undefined) {
  if (Deno.stderr.isTerminal()) {
    // Loaded only for a terminal: the bar's modules cost ~50 ms of every other run's start.
    const [{ default: cliProgress }, { default: process }] = await Promise.all([
      import("cli-progress"),
      import("node:process"),
    ]);
    const bar = new cliProgress.SingleBar({
      noTTYOutput: true,
      stream: process.stderr,
      format: total === undefined
        ? "trace {value} requests"
        : "trace [{bar}] {value}/{total} requests",
      hideCursor: true,
    }, cliProgress.Presets.shades_classic);
    bar.start(total ?? 0, 0);
    return { update: (done: number) => bar.update(done), stop: () => bar.stop() };
  }
  const step = total === undefined ? 1000 : Math.max(1, Math.ceil(total / 10));
  return {
    update: (done: number) => {
      if (done % step === 0) {
        console.error(`kvh trace: ${done}${total === undefined ? "" : `/${total}`} requests`);
      }
    },
    stop: () => {},
  };
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function formatSummary(
  summary: WorkloadSummary,
  metrics: MetricsSnapshot,
  device: string,
  files: { log: string; metrics_json: string; metrics_prom: string },
  headSeq: number | undefined,
): string {
  const scrubSeconds = metrics.sanitize_duration_seconds.sum;
  const rate = scrubSeconds > 0 ? metrics.scrubbed_bytes_total / scrubSeconds / 1e9 : 0;
  const quarantines = Object.entries(metrics.quarantines_by_reason).filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`).join(", ");
  const coverage = metrics.coverage_verified
    ? `min ${metrics.min_coverage_pct.toFixed(3)}%  avg ${metrics.avg_coverage_pct.toFixed(3)}%`
    : "unverified (--verify none): reported as 0";
  const rows: Array<[string, string]> = [
    ["device", `${device}, verify ${metrics.verify_mode}`],
    [
      "requests",
      `${summary.requests} (${summary.completed} completed, ${summary.failed} failed, ` +
      `${summary.reused} on a reused buffer) in ${(summary.elapsedMs / 1000).toFixed(2)} s`,
    ],
    ["bytes scrubbed", `${bytes(metrics.scrubbed_bytes_total)} at ${rate.toFixed(1)} GB/s`],
    ["quarantines", `${metrics.quarantine_count}${quarantines ? ` (${quarantines})` : ""}`],
    ["coverage", `${coverage} (threshold ${metrics.threshold_pct}%)`],
    [
      "scrub time",
      `p50 ${metrics.sanitize_duration_p50_ms.toFixed(3)} ms  p95 ${
        metrics.sanitize_duration_p95_ms.toFixed(3)
      } ms`,
    ],
    ["leaks detected", String(metrics.leaks_detected_total)],
    ["anomalies", String(metrics.anomalies_total)],
    ["forensic log", `${files.log}${headSeq === undefined ? "" : ` (head seq ${headSeq})`}`],
    ["metrics", `${files.metrics_json}, ${files.metrics_prom}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}
