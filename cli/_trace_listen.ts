/**
 * `kvh trace --listen unix:PATH` (DESIGN.md §7b): the tracer as a daemon scrubbing memory owned
 * by serving engines. Called from cli/trace.ts once the shared trace flags are resolved; the
 * rules live in lib/sidecar/.
 *
 * Exit codes: 0 for a drained stop (SIGTERM or SIGINT, every release in flight finished,
 * metrics `run_status: "stopped"`); 143 / 130 when releases had to be abandoned (metrics
 * `interrupted`); 1 for bad flags, a socket path that is not safe to use, or a log that cannot
 * be opened.
 *
 * @module
 */
import { dirname, join, resolve } from "../lib/io/path.ts";
import { KvhError } from "../lib/errors.ts";
import {
  type EpochMacKeys,
  type ForensicLogOptions,
  listChainFiles,
  logLockPath,
  openForensicLog,
  rekeyLog,
} from "../lib/forensic/mod.ts";
import type { RunStatus } from "../lib/metrics/types.ts";
import {
  type CudaPoolRequest,
  defaultPoolFiles,
  type EnginePool,
  NATIVE_POOL_LIBRARY_NAME,
  openCudaPoolOpener,
  type PoolFiles,
  SidecarDaemon,
} from "../lib/sidecar/mod.ts";
import { describeIoError, revokePermissionsExcept } from "./_common.ts";
import { loadNativeDigests } from "../lib/forensic/native_digest.ts";
import { writeEvidence } from "./trace.ts";

/** Longest wait for releases in flight after SIGTERM before they are abandoned. */
const DRAIN_MS = 30_000;
/** The metrics files are rewritten at most this often while the daemon runs. */
const METRICS_INTERVAL_MS = 1_000;

/** Settings `kvh trace` resolved for the daemon. */
export interface TraceListenOptions {
  listen: string;
  poolDirs: readonly string[];
  logDir: string;
  logFile: string;
  maxLogBytes: number;
  metricsJson: string;
  metricsProm: string;
  coverageThreshold: number;
  doublePass: boolean;
  verify: string;
  hmacKey?: Uint8Array;
  /** Forward-secure MAC keys (`--mac-state-file`). */
  macKeys?: EpochMacKeys;
  /** Signs checkpoints as the log is written (`--signing-key-file`, `--checkpoint-file`). */
  observe?: ForensicLogOptions["observe"];
  /** `--device`: `cpu` serves CPU pools only, `cuda` needs a GPU, `auto` takes one if present. */
  device: string;
  /** `KVH_CUDA_LIB`. */
  cudaLibraryPath?: string;
  /** Every flag `trace` parsed, to refuse those a daemon would ignore. */
  flags: Record<string, unknown>;
}

// Flags of a workload run that mean nothing to the daemon: refused rather than ignored.
const WORKLOAD_FLAGS: Record<string, string> = {
  workload: "--workload",
  tenants: "--tenants",
  requests: "--requests",
  tokens: "--tokens",
  seed: "--seed",
  concurrency: "--concurrency",
  verifySamples: "--verify-samples",
  ttlSec: "--ttl-sec",
  maxReuse: "--max-reuse",
  json: "--json",
};

/**
 * Runs the daemon until SIGTERM or SIGINT.
 *
 * @param options Resolved settings.
 * @returns The exit code.
 */
export async function runTraceListen(options: TraceListenOptions): Promise<number> {
  if (!options.listen.startsWith("unix:") || options.listen.length === 5) {
    throw new KvhError(
      "flag_invalid",
      `Invalid --listen ${options.listen}: expected unix:PATH (a Unix socket path)`,
    );
  }
  const ignored = Object.keys(WORKLOAD_FLAGS).filter((key) => options.flags[key] !== undefined);
  if (ignored.length > 0) {
    throw new KvhError(
      "flag_invalid",
      `Invalid ${
        WORKLOAD_FLAGS[ignored[0]!]
      } with --listen: it applies to a workload run, not to the daemon`,
    );
  }
  if (options.verify !== "full") {
    throw new KvhError(
      "flag_invalid",
      `Invalid --verify ${options.verify} with --listen: a release is acknowledged only after a full read-back`,
    );
  }
  const socketPath = resolve(options.listen.slice(5));
  const openCudaPool = cudaPoolOpener(options.device, options.cudaLibraryPath);
  // Loaded before the permissions are revoked: the native pool helper needs `ffi` and `read`
  // to load, none to be called.
  const poolFiles = defaultPoolFiles();
  // Likewise the digest helper: each release's record is then hashed in one native call.
  loadNativeDigests();
  const poolDirs = await resolvePoolDirs(options.poolDirs, poolFiles);
  // Through Deno's file API, files under /dev (where /dev/shm pools live) are granted only to a
  // process holding every permission, so revoking any would lock kvh out of them.
  if (
    poolFiles.name === "native" ||
    !poolDirs.some((dir) => dir === "/dev" || dir.startsWith("/dev/"))
  ) {
    await revokePermissionsExcept(
      openCudaPool === undefined ? ["read", "write", "net"] : ["read", "write", "net", "ffi"],
    );
  }
  await prepareSocketPath(socketPath);
  const log = await openForensicLog({
    dir: options.logDir,
    file: options.logFile,
    hmacKey: options.hmacKey,
    observe: options.observe,
    maxBytes: options.maxLogBytes,
    commitDelayMs: 2,
    commitRecords: 256,
    macKeys: options.macKeys,
  });
  if (options.macKeys !== undefined) await rekeyLog(log, options.macKeys);
  const logPath = join(options.logDir, options.logFile);
  const protectedFiles = [
    ...await listChainFiles(options.logDir, options.logFile),
    logPath,
    logLockPath(logPath),
    options.metricsJson,
    options.metricsProm,
  ];
  let dirty = true;
  const daemon = new SidecarDaemon({
    audit: log,
    poolDirs,
    protectedFiles,
    protectedDirs: [await Deno.realPath(options.logDir)],
    poolFiles,
    coverageThresholdPct: options.coverageThreshold,
    doublePass: options.doublePass,
    openCudaPool,
    onChange: () => {
      dirty = true;
    },
  });
  const writeMetrics = (status: RunStatus) =>
    writeEvidence(options.metricsJson, options.metricsProm, daemon.metrics(status));
  let listener: Deno.UnixListener;
  try {
    listener = Deno.listen({ transport: "unix", path: socketPath });
    await Deno.chmod(socketPath, 0o600);
  } catch (error) {
    await log.close();
    throw new KvhError(
      "listen_failed",
      `Cannot listen on ${socketPath}: ${describeIoError(error)}`,
      { cause: error },
    );
  }
  await writeMetrics("running");
  dirty = false;
  // A bounded rewrite interval: live values for serve-metrics and the gate without a write
  // per release.
  let writing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    if (!dirty) return;
    dirty = false;
    writing = writing.then(() => writeMetrics("running")).catch((error) => {
      console.error(`kvh: ${(error as Error).message}`);
    });
  }, METRICS_INTERVAL_MS);
  let signal: Deno.Signal | undefined;
  const stopped = new Promise<void>((done) => {
    const onSignal = (name: Deno.Signal) => () => {
      signal ??= name;
      done();
    };
    for (const name of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(name, onSignal(name));
    }
  });
  console.error(`kvh trace: listening on unix:${socketPath}`);
  const serving = daemon.serve(listener);
  await stopped;
  console.error(`kvh trace: ${signal}: finishing releases in flight`);
  const { abandonedReleases } = await daemon.stop(DRAIN_MS);
  await serving;
  clearInterval(timer);
  await writing;
  await log.close();
  await Deno.remove(socketPath).catch(() => {});
  const status: RunStatus = abandonedReleases > 0 ? "interrupted" : "stopped";
  await writeMetrics(status);
  if (abandonedReleases > 0) {
    console.error(
      `kvh: Interrupted: ${abandonedReleases} releases did not finish within ${DRAIN_MS} ms, their blocks stay dirty`,
    );
    return signal === "SIGINT" ? 130 : 143;
  }
  console.error(`kvh trace: stopped (${daemon.metrics().sanitize_total} releases scrubbed)`);
  return 0;
}

async function resolvePoolDirs(dirs: readonly string[], files: PoolFiles): Promise<string[]> {
  const resolved: string[] = [];
  for (const dir of dirs.length > 0 ? dirs : ["/dev/shm"]) {
    let real: string;
    try {
      real = await files.realPath(resolve(dir));
    } catch (error) {
      // Only without the native pool helper: Deno lets a process touch files under /dev only
      // when it holds every permission.
      const why = error instanceof Deno.errors.NotCapable && resolve(dir).startsWith("/dev/")
        ? `files under /dev need the native pool helper (${NATIVE_POOL_LIBRARY_NAME}, built by ffi/native/build.sh) or a --pool-dir on another tmpfs`
        : describeIoError(error);
      throw new KvhError("flag_invalid", `Invalid --pool-dir ${dir}: ${why}`, { cause: error });
    }
    if (!(await files.stat(real)).isDirectory) {
      throw new KvhError("flag_invalid", `Invalid --pool-dir ${dir}: not a directory`);
    }
    resolved.push(real);
  }
  return resolved;
}

// The socket's directory must be 0700 (created so when missing); an existing path is removed
// only when it is a socket nobody answers on, a stale one left by a killed kvh.
async function prepareSocketPath(path: string): Promise<void> {
  const dir = dirname(path);
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.lstat(dir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw socketError(dir, error);
  }
  if (info === undefined) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.chmod(dir, 0o700);
  } else if (!info.isDirectory) {
    throw new KvhError("listen_unsafe", `Refusing --listen ${path}: ${dir} is not a directory`);
  } else if (((info.mode ?? 0) & 0o077) !== 0) {
    throw new KvhError(
      "listen_unsafe",
      `Refusing --listen ${path}: ${dir} has mode ${
        ((info.mode ?? 0) & 0o777).toString(8)
      }, needs 0700 so only its owner reaches the socket`,
    );
  }
  let existing: Deno.FileInfo;
  try {
    existing = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw socketError(path, error);
  }
  if (!existing.isSocket) {
    throw new KvhError(
      "listen_unsafe",
      `Refusing --listen ${path}: the path exists and is not a socket`,
    );
  }
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
  } catch {
    await Deno.remove(path);
    return;
  }
  throw new KvhError(
    "listen_in_use",
    `Refusing --listen ${path}: another process answers on that socket`,
  );
}

function socketError(path: string, error: unknown): KvhError {
  return new KvhError("listen_failed", `Cannot use ${path}: ${describeIoError(error)}`, {
    cause: error,
  });
}

// CUDA pools need the CUDA library and a GPU: required with --device cuda, taken when present
// with auto, never with cpu.
function cudaPoolOpener(
  device: string,
  cudaLibraryPath: string | undefined,
): ((request: CudaPoolRequest) => Promise<EnginePool>) | undefined {
  if (device === "webgpu") {
    throw new KvhError(
      "flag_invalid",
      "Invalid --device webgpu with --listen: engine pools are CPU files or CUDA allocations",
    );
  }
  if (device === "cpu") return undefined;
  try {
    return openCudaPoolOpener({ libraryPath: cudaLibraryPath });
  } catch (error) {
    if (device === "cuda") throw error;
    console.error(
      `kvh: CUDA pools unavailable, serving CPU pools only: ${(error as Error).message}`,
    );
    return undefined;
  }
}
