/**
 * `kvh verify LOG`: verifies a forensic log and the rotated files it links back to (DESIGN.md
 * §3). Exit 0 when it verifies, 2 on any integrity failure, 1 when it cannot be read.
 *
 * @module
 */
import { resolveKeyring } from "./_mac_options.ts";
// Type-only: `kvh verify LOG` runs without commander (runVerifyFast), whose load is a fifth of a
// large log's whole verify.
import type { Command } from "@commander-js/extra-typings";
import { join } from "../lib/io/path.ts";
import { KvhError } from "../lib/errors.ts";
import {
  addVerifyCheckpointOptions,
  runCheckpointVerify,
  type VerifyCheckpointFlags,
  wantsCheckpoints,
} from "./_verify_checkpoints.ts";
import { DEFAULT_LOG_FILE, verifyLog, type VerifyLogReport } from "../lib/forensic/mod.ts";
import { loadNativeDigests } from "../lib/forensic/native_digest.ts";
import {
  guardOutputs,
  numberOption,
  resolveHmacKey,
  revokePermissionsExcept,
  runAction,
  setting,
  textSetting,
  useColor,
  withEnv,
  writeOutput,
} from "./_common.ts";

/**
 * Most line-checking threads `--workers` takes: each holds a copy of a chunk in flight, and past
 * a few per core they only add memory and contention (`--workers 100000` started that many).
 */
const MAX_WORKERS = 64;

/** The flags of `verify`, as commander parses them. */
interface VerifyFlags extends VerifyCheckpointFlags {
  logDir?: string;
  logFile?: string;
  activeOnly?: boolean;
  hmacKeyFile?: string;
  keyring?: string;
  json?: boolean;
  out?: string;
  allowNonfinite?: boolean;
  workers?: number;
}

/** Builds the `verify` subcommand. */
export async function verifyCommand(): Promise<Command<[string | undefined]>> {
  const { Command: CommandClass } = await import("@commander-js/extra-typings");
  const command = new CommandClass("verify")
    .description(
      "Verify a forensic log: hash chain, MACs, seq, rotation links and prune records, in kvh's " +
        "format v2 and the Python tool's format v1.\n\n" +
        "Exit codes: 0 verified, 2 integrity failure (any defect in a readable log), 1 usage or I/O error.",
    )
    .argument("[log]", "active log file (default: --log-dir/--log-file, when either is set)")
    .option(
      "--log-dir <dir>",
      withEnv("log directory, as the Python tool's verify_logs", "LOG_DIR"),
    )
    .option(
      "--log-file <name>",
      withEnv("active file name in --log-dir", "LOG_FILE", DEFAULT_LOG_FILE),
    )
    .option("--active-only", "verify only the active file, not the rotated files before it")
    .option("--hmac-key-file <file>", withEnv("HMAC key file (0600)", "FORENSIC_HMAC_SECRET"))
    .option(
      "--keyring <file>",
      withEnv(
        "initial keys of a rekeyed forward-secure log, lines <key id> <path|base64:key> (0600)",
        "KV_MAC_KEYRING",
      ),
    )
    .option("--json", "print the report as one JSON document")
    .option(
      "--out <file>",
      withEnv("also write the JSON report to this file, atomically, 0600", "VERDICT_OUT"),
    )
    .option("--allow-nonfinite", "accept the Python tool's NaN/Infinity tokens in format-v1 lines")
    .option(
      "--workers <n>",
      `check lines on N worker threads, at most ${MAX_WORKERS} (default: 0 with the native helper libkvh_hash.so, which uses its own threads; else one per CPU, at most 4, for logs of 8 MiB or more on 4+ CPUs)`,
      numberOption("--workers", { integer: true, min: 0, max: MAX_WORKERS }),
    );
  return addVerifyCheckpointOptions(command).action((log, parsed) =>
    // The checkpoint flags are added by their own module, outside commander's typed chain.
    runAction(() => runVerify(log, parsed as VerifyFlags))
  );
}

/**
 * Runs `kvh verify LOG` and `kvh verify LOG --json` without commander, the way commander would
 * run them; any other arguments resolve to `undefined` and are left to the commander tree.
 *
 * @param args The arguments after `verify`.
 * @returns The exit code, or `undefined`.
 */
export async function runVerifyFast(args: readonly string[]): Promise<number | undefined> {
  const logs = args.filter((arg) => arg !== "--json");
  if (logs.length !== 1 || logs[0]!.startsWith("-") || args.length > 2) return undefined;
  await runAction(() => runVerify(logs[0], { json: args.includes("--json") || undefined }));
  return typeof Deno.exitCode === "number" ? Deno.exitCode : 0;
}

async function runVerify(log: string | undefined, options: VerifyFlags): Promise<number> {
  const out = setting(options.out, "VERDICT_OUT", textSetting);
  if (wantsCheckpoints(options)) {
    return await runCheckpointVerify(options, {
      logPath: () => resolveLogPath(log, options.logDir, options.logFile),
      verify: {
        hmacKey: await resolveHmacKey(options.hmacKeyFile),
        activeOnly: options.activeOnly ?? false,
        workers: options.workers,
      },
      json: options.json === true,
      out,
    });
  }
  const path = resolveLogPath(log, options.logDir, options.logFile);
  const hmacKey = await resolveHmacKey(options.hmacKeyFile);
  const macKeyring = await resolveKeyring(options.keyring, hmacKey);
  await guardOutputs(path, { "--out": out });
  // Loaded before ffi is revoked; the opened library stays usable (without it: node:crypto).
  loadNativeDigests();
  await revokePermissionsExcept(out === undefined ? ["read"] : ["read", "write"]);
  const report = await verifyLog(path, {
    hmacKey,
    macKeyring,
    activeOnly: options.activeOnly ?? false,
    allowNonFinite: options.allowNonfinite ?? false,
    workers: options.workers,
  });
  const document = { log: path, ...report };
  if (out !== undefined) {
    await writeOutput("--out", out, JSON.stringify(document, null, 2) + "\n");
  }
  for (const warning of report.warnings) {
    console.error(`kvh: warning: ${warning}`);
  }
  if (options.json) console.log(JSON.stringify(document));
  else console.log(summary(path, report, useColor()));
  return report.ok ? 0 : 2;
}

function resolveLogPath(
  log: string | undefined,
  logDir: string | undefined,
  logFile: string | undefined,
): string {
  if (log !== undefined) {
    if (logDir !== undefined || logFile !== undefined) {
      throw new KvhError(
        "flag_invalid",
        "Invalid arguments: give LOG or --log-dir/--log-file, not both",
      );
    }
    return log;
  }
  const dir = setting(logDir, "LOG_DIR", textSetting);
  const file = setting(logFile, "LOG_FILE", textSetting);
  if (dir === undefined && file === undefined) {
    throw new KvhError(
      "flag_invalid",
      "Missing LOG: give the log file, or --log-dir/--log-file (env LOG_DIR, LOG_FILE)",
    );
  }
  return join(dir ?? ".", file ?? DEFAULT_LOG_FILE);
}

function summary(path: string, report: VerifyLogReport, color: boolean): string {
  const paint = (code: string, text: string) => color ? `\x1b[${code}m${text}\x1b[0m` : text;
  const head = report.head === null
    ? "empty log"
    : `head seq ${report.head.seq} hash ${report.head.hash}`;
  const macs = report.mac_checked ? "MACs checked" : "MACs not checked";
  const counts = `${report.files} file${report.files === 1 ? "" : "s"}, ${report.records} record${
    report.records === 1 ? "" : "s"
  }`;
  if (report.failure === null) return `${paint("32", "OK")} ${path}: ${counts}, ${head}, ${macs}`;
  const { file, line, reason, detail } = report.failure;
  return `${paint("31", "FAILED")} ${path}: ${reason} in ${file} line ${line}: ${detail}\n` +
    `verified before the failure: ${counts}, ${head}, ${macs}`;
}
