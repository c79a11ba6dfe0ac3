/**
 * `kvh gate METRICS.json` (DESIGN.md §3): applies hygiene thresholds to a metrics file and exits
 * 0 (pass), 2 (a check failed) or 1 (unreadable or malformed input, a missing metric, bad flags).
 *
 * Start-up time is part of the contract (a CI step runs this on every build): this module imports
 * neither commander nor zod nor the forensic code up front. `runGateFast` parses the flags itself
 * so `cli/main.ts` can skip loading commander (about 45 ms); anything it does not recognise falls
 * back to the commander tree, which gives help and the usual usage errors.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { KvhError } from "../lib/errors.ts";
import {
  ACCEPTED_RUN_STATUSES,
  evaluateGate,
  RUN_STATUS_CHECK,
} from "../lib/gate/evaluate_gate.ts";
import { readGateMetrics } from "../lib/gate/read_metrics.ts";
import type { GateMetrics, GateThresholds } from "../lib/gate/types.ts";
import {
  addLogCheck,
  LOG_CHECK,
  LOG_MAC_CHECK,
  type LogCheckReport,
  type VerdictDocument,
  verdictDocument,
} from "../lib/gate/verdict_document.ts";
import {
  describeIoError,
  envNumber,
  guardOutputs,
  numberOption,
  resolveHmacKey,
  revokePermissionsExcept,
  runAction,
  useColor,
  writeOutput,
} from "./_common.ts";

/** Default `--coverage-min` in percent, as in the Python tool. */
const DEFAULT_COVERAGE_MIN = 99.9;

interface FlagSpec {
  /** The long flag, e.g. `--coverage-min`. */
  long: string;
  /** Name of the flag's value in help; absent for a switch. */
  value?: string;
  description: string;
}

/** Every flag of `kvh gate`; both the commander tree and the fast parser read this table. */
const FLAGS: readonly FlagSpec[] = [
  {
    long: "--coverage-min",
    value: "pct",
    description:
      `minimum min_coverage_pct in percent; equal passes (env KV_COVERAGE_THRESHOLD, default ${DEFAULT_COVERAGE_MIN})`,
  },
  {
    long: "--unsanitized-max",
    value: "n",
    description: "maximum unsanitized_regions_count (default 0)",
  },
  { long: "--quarantine-max", value: "n", description: "maximum quarantine_count (default 0)" },
  {
    long: "--p95-max-ms",
    value: "ms",
    description: "maximum sanitize_duration_p95_ms (off unless set)",
  },
  {
    long: "--sanitize-p95-ms-max",
    value: "ms",
    description: "alias of --p95-max-ms (the Python tool's name)",
  },
  { long: "--reuse-rate-max", value: "rate", description: "maximum reuse_rate (off unless set)" },
  {
    long: "--policy",
    value: "file",
    description:
      "thresholds as JSON (coverage_pct_min, unsanitized_regions_max, quarantine_count_max, " +
      "reuse_rate_max, sanitize_p95_ms_max); flags override it, it overrides the environment",
  },
  {
    long: "--out",
    value: "file",
    description:
      "also write the verdict JSON here (0600, atomic). Unlike the Python tool, nothing is " +
      "written unless asked: pass --out forensics/verdict.json for its old default",
  },
  {
    long: "--require-verified",
    value: "log",
    description: "fail the gate unless this forensic log verifies",
  },
  {
    long: "--hmac-key-file",
    value: "file",
    description: "HMAC key of the --require-verified log (env FORENSIC_HMAC_SECRET); a log " +
      "with MACs fails the log_macs_checked check without it",
  },
  {
    long: "--chain-only",
    description: "accept a --require-verified log whose MACs cannot be checked for want of a " +
      "key: only its hash chain is verified, which anyone able to rewrite the log can recompute",
  },
  {
    long: "--evidence",
    value: "dir",
    description:
      "write an evidence bundle (metrics, verdict, verification, test report, MANIFEST.sha256) " +
      "to this new directory",
  },
  {
    long: "--test-report",
    value: "file",
    description: "test report to add to the --evidence bundle",
  },
  { long: "--json", description: "print the verdict as one JSON document" },
  {
    long: "--prometheus",
    value: "url",
    description: "gate the fleet instead of a file: every node's kvh metrics through this " +
      "Prometheus HTTP API (worst coverage, total unsanitized and quarantined, worst p95); " +
      "unreachable, no series or a target down exits 1",
  },
  {
    long: "--selector",
    value: "selector",
    description: 'series selector for --prometheus (default {job="kvh"})',
  },
];

/** Parsed flags keyed by long flag name: a string value, or `true` for a switch. */
type RawFlags = ReadonlyMap<string, string | true>;

/** The gate's configuration after flag > policy > environment > default resolution. */
interface GateConfig {
  thresholds: GateThresholds;
  out?: string;
  requireVerified?: string;
  hmacKey?: Uint8Array;
  chainOnly: boolean;
  evidence?: string;
  testReport?: string;
  json: boolean;
  color: boolean;
}

/** Metrics as a source delivers them: values, the object to echo, the raw bytes for evidence. */
interface LoadedMetrics {
  metrics: GateMetrics;
  document: Record<string, unknown>;
  bytes?: Uint8Array<ArrayBuffer>;
}

/** Where the gate's metrics come from (a file here; a fleet query can be swapped in). */
interface MetricsSource {
  /** The path or URL, recorded in the verdict. */
  label: string;
  /** Permissions the source needs beyond reading and writing files (e.g. `net` for a URL). */
  permissions: readonly Deno.PermissionName[];
  load(): Promise<LoadedMetrics>;
}

function fileSource(path: string | undefined): MetricsSource {
  if (path === undefined) {
    throw new KvhError(
      "gate_no_input",
      "Missing metrics file: usage is kvh gate METRICS.json [options]",
    );
  }
  return { label: path, permissions: [], load: () => readGateMetrics(path) };
}

/** The file source, or the fleet (DESIGN.md §7) when `--prometheus` is given. */
function inputSource(path: string | undefined, raw: RawFlags): MetricsSource {
  const url = stringFlag(raw, "--prometheus");
  const selector = stringFlag(raw, "--selector");
  if (url === undefined) {
    if (selector !== undefined) {
      throw new KvhError("flag_invalid", "Invalid --selector: it needs --prometheus URL");
    }
    return fileSource(path);
  }
  if (path !== undefined) {
    throw new KvhError("flag_invalid", `Invalid --prometheus: give it or ${path}, not both`);
  }
  return {
    label: url,
    permissions: ["net"],
    load: async () => {
      const { queryFleetMetrics } = await import("../lib/gate/prometheus_source.ts");
      const metrics = await queryFleetMetrics(url, selector === undefined ? {} : { selector });
      return { metrics, document: { prometheus: url, selector: selector ?? null, ...metrics } };
    },
  };
}

function stringFlag(raw: RawFlags, long: string): string | undefined {
  const value = raw.get(long);
  return typeof value === "string" ? value : undefined;
}

function numberFlag(raw: RawFlags, long: string, integer = false): number | undefined {
  const text = stringFlag(raw, long);
  return text === undefined ? undefined : numberOption(long, { integer, min: 0 })(text);
}

/** Resolves flag > policy > environment > default. Everything that reads the environment runs here. */
async function resolveConfig(raw: RawFlags): Promise<GateConfig> {
  let fromPolicy: { [K in keyof GateThresholds]?: GateThresholds[K] | null } = {};
  const policyPath = stringFlag(raw, "--policy");
  if (policyPath !== undefined) {
    const { readGatePolicy, gatePolicyThresholds } = await import("../lib/gate/policy.ts");
    fromPolicy = gatePolicyThresholds(await readGatePolicy(policyPath));
  }
  const p95 = numberFlag(raw, "--p95-max-ms");
  const p95Alias = numberFlag(raw, "--sanitize-p95-ms-max");
  if (p95 !== undefined && p95Alias !== undefined && p95 !== p95Alias) {
    throw new KvhError(
      "flag_invalid",
      `Conflicting --p95-max-ms ${p95} and --sanitize-p95-ms-max ${p95Alias}: give one`,
    );
  }
  const envCoverage = envNumber("KV_COVERAGE_THRESHOLD");
  if (envCoverage !== undefined && envCoverage < 0) {
    throw new KvhError(
      "env_invalid",
      `Invalid KV_COVERAGE_THRESHOLD: must not be negative, got ${envCoverage}`,
    );
  }
  const thresholds: GateThresholds = {
    coverageMinPct: numberFlag(raw, "--coverage-min") ?? fromPolicy.coverageMinPct ?? envCoverage ??
      DEFAULT_COVERAGE_MIN,
    unsanitizedMax: numberFlag(raw, "--unsanitized-max", true) ?? fromPolicy.unsanitizedMax ?? 0,
    quarantineMax: numberFlag(raw, "--quarantine-max", true) ?? fromPolicy.quarantineMax ?? 0,
  };
  const p95Max = p95 ?? p95Alias ?? fromPolicy.p95MaxMs;
  if (p95Max !== undefined && p95Max !== null) thresholds.p95MaxMs = p95Max;
  const reuseMax = numberFlag(raw, "--reuse-rate-max") ?? fromPolicy.reuseRateMax;
  if (reuseMax !== undefined && reuseMax !== null) thresholds.reuseRateMax = reuseMax;
  const requireVerified = stringFlag(raw, "--require-verified");
  const hmacKeyFile = stringFlag(raw, "--hmac-key-file");
  if (hmacKeyFile !== undefined && requireVerified === undefined) {
    throw new KvhError("flag_invalid", "Invalid --hmac-key-file: it needs --require-verified LOG");
  }
  const chainOnly = raw.get("--chain-only") === true;
  if (chainOnly && requireVerified === undefined) {
    throw new KvhError("flag_invalid", "Invalid --chain-only: it needs --require-verified LOG");
  }
  const evidence = stringFlag(raw, "--evidence");
  const testReport = stringFlag(raw, "--test-report");
  if (testReport !== undefined && evidence === undefined) {
    throw new KvhError("flag_invalid", "Invalid --test-report: it needs --evidence DIR");
  }
  return {
    thresholds,
    out: stringFlag(raw, "--out"),
    requireVerified,
    hmacKey: requireVerified === undefined ? undefined : await resolveHmacKey(hmacKeyFile),
    chainOnly,
    evidence,
    testReport,
    json: raw.get("--json") === true,
    color: useColor(),
  };
}

type Verification = LogCheckReport & { log: string };

async function verifyForGate(log: string, hmacKey: Uint8Array | undefined): Promise<Verification> {
  const { verifyLog } = await import("../lib/forensic/verify.ts");
  const { ok, files, records, head, mac_checked, mac_present, failure } = await verifyLog(log, {
    hmacKey,
  });
  return { log, ok, files, records, head, mac_checked, mac_present, failure };
}

function formatValue(name: string, value: number): string {
  if (name === LOG_CHECK) return value === 1 ? "verified" : "not verified";
  if (name === LOG_MAC_CHECK) return value === 1 ? "checked" : "not checked (no key)";
  if (name === RUN_STATUS_CHECK) return value === 1 ? ACCEPTED_RUN_STATUSES.join("|") : "other";
  return String(value);
}

function renderTable(
  document: VerdictDocument,
  color: boolean,
): string {
  const paint = (text: string, code: number) => color ? `\x1b[${code}m${text}\x1b[0m` : text;
  const rows = document.checks.map((check) => [
    check.name,
    check.name === RUN_STATUS_CHECK
      ? formatValue(check.name, 1)
      : `${check.comparator} ${formatValue(check.name, check.threshold)}`,
    check.name === RUN_STATUS_CHECK
      ? check.source ?? ""
      : formatValue(check.name, check.actual) + (check.source ? ` (${check.source})` : ""),
    check.pass ? "pass" : "FAIL",
  ]);
  const header = ["check", "threshold", "actual", "result"];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i]!.length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, i) => i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ");
  const body = rows.map((row) => {
    const result = row[3] === "pass" ? paint(row[3], 32) : paint(row[3]!, 31);
    return line([...row.slice(0, 3), result]);
  });
  const verdict = document.pass ? paint("PASS", 32) : paint("FAIL", 31);
  const failure = document.verification?.failure;
  const why = failure
    ? [`log: ${failure.reason} at ${failure.file}:${failure.line}: ${failure.detail}`]
    : [];
  const run = document.checks.find((check) => check.name === RUN_STATUS_CHECK && !check.pass);
  if (run !== undefined) {
    why.unshift(
      `run: the run that wrote ${document.input} ended ${run.source}, so its metrics cover ` +
        "only part of the work",
    );
  }
  if (document.checks.some((check) => check.name === LOG_MAC_CHECK && !check.pass)) {
    why.push(
      "log: it carries MACs but no key was given (--hmac-key-file or FORENSIC_HMAC_SECRET), so " +
        "only its hash chain was checked; --chain-only accepts that",
    );
  }
  return [line(header), ...body, ...why, `verdict: ${verdict}`].join("\n");
}

function extensionOf(path: string): string {
  return /\.[A-Za-z0-9]{1,10}$/.exec(path)?.[0] ?? "";
}

/** Runs the gate once the flags are parsed; returns the exit code. */
async function runGate(source: MetricsSource, raw: RawFlags): Promise<number> {
  const config = await resolveConfig(raw);
  await guardOutputs(config.requireVerified, {
    "--out": config.out,
    "--evidence": config.evidence,
  });
  await revokePermissionsExcept(["read", "write", ...source.permissions]);
  const loaded = await source.load();
  let verdict = evaluateGate(loaded.metrics, config.thresholds);
  let verification: Verification | undefined;
  if (config.requireVerified !== undefined) {
    verification = await verifyForGate(config.requireVerified, config.hmacKey);
    verdict = addLogCheck(verdict, verification, config.requireVerified, {
      chainOnly: config.chainOnly,
    });
  }
  const document = verdictDocument(verdict, {
    metrics: loaded.document,
    input: source.label,
    verification,
  });
  const json = JSON.stringify(document, null, 2) + "\n";
  if (config.out !== undefined) await writeOutput("--out", config.out, json);
  if (config.evidence !== undefined) {
    await writeEvidence(config.evidence, loaded, json, verification, config.testReport);
  }
  console.log(config.json ? JSON.stringify(document) : renderTable(document, config.color));
  return document.pass ? 0 : 2;
}

async function writeEvidence(
  dir: string,
  loaded: LoadedMetrics,
  verdictJson: string,
  verification: Verification | undefined,
  testReport: string | undefined,
): Promise<void> {
  const { writeEvidenceBundle } = await import("../lib/gate/evidence.ts");
  const files: { name: string; data: Uint8Array<ArrayBuffer> | string }[] = [];
  files.push({
    name: "metrics.json",
    data: loaded.bytes ?? JSON.stringify(loaded.document, null, 2) + "\n",
  });
  files.push({ name: "verdict.json", data: verdictJson });
  if (verification !== undefined) {
    files.push({ name: "verification.json", data: JSON.stringify(verification, null, 2) + "\n" });
  }
  if (testReport !== undefined) {
    let data: Uint8Array<ArrayBuffer>;
    try {
      data = await Deno.readFile(testReport);
    } catch (error) {
      throw new KvhError(
        "test_report_unreadable",
        `Cannot read --test-report ${testReport}: ${describeIoError(error)}`,
        {
          cause: error,
        },
      );
    }
    files.push({ name: `test-report${extensionOf(testReport)}`, data });
  }
  await writeEvidenceBundle(dir, files);
}

/** Gate flags the fast parser understands; anything else goes to commander. */
const FLAG_BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((spec) => [spec.long, spec]));

/**
 * Parses `kvh gate` arguments without commander. Returns `undefined` for anything unusual
 * (help, unknown or short flags, `--`, a missing value, several files) so commander can answer
 * with its usual help or usage error.
 */
export function parseGateArgs(
  args: readonly string[],
): { file?: string; raw: RawFlags } | undefined {
  const raw = new Map<string, string | true>();
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      files.push(arg);
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") return undefined;
    const equals = arg.indexOf("=");
    const name = equals < 0 ? arg : arg.slice(0, equals);
    const spec = FLAG_BY_NAME.get(name);
    if (spec === undefined) return undefined;
    if (spec.value === undefined) {
      if (equals >= 0) return undefined;
      raw.set(name, true);
      continue;
    }
    const value = equals >= 0 ? arg.slice(equals + 1) : args[++i];
    if (
      value === undefined || (equals < 0 && value.startsWith("-") && Number.isNaN(Number(value)))
    ) {
      return undefined;
    }
    raw.set(name, value);
  }
  if (files.length > 1) return undefined;
  return { file: files[0], raw };
}

/**
 * Runs `kvh gate` without loading commander when the arguments are plain; `undefined` means
 * "not handled, use the commander tree".
 *
 * @param args Arguments after `gate`.
 * @returns The exit code, or `undefined`.
 */
export async function runGateFast(args: readonly string[]): Promise<number | undefined> {
  const parsed = parseGateArgs(args);
  if (parsed === undefined) return undefined;
  await runAction(() => runGate(inputSource(parsed.file, parsed.raw), parsed.raw));
  return typeof Deno.exitCode === "number" ? Deno.exitCode : 0;
}

/**
 * The `gate` subcommand for the commander tree (help, and arguments the fast parser leaves to
 * commander).
 *
 * @returns The command.
 */
export async function gateCommand() {
  const { Command: CommandClass } = await import("@commander-js/extra-typings");
  const command: Command<[string | undefined]> = new CommandClass("gate")
    .description(
      "Apply hygiene thresholds to a metrics file (kvh's metrics JSON or the Python tool's " +
        'coverage.json, flat or under "metrics").\n' +
        "Replaces: python tools/eviction_checker.py METRICS [flags] (its flags keep working).\n" +
        "Exit codes: 0 pass, 2 a check failed, 1 unreadable or malformed input, a missing metric, " +
        "unknown policy keys or bad flags.",
    )
    .argument("[metrics]", "metrics JSON file");
  for (const spec of FLAGS) {
    command.option(
      spec.value === undefined ? spec.long : `${spec.long} <${spec.value}>`,
      spec.description,
    );
  }
  return command.action((file, _options, self) =>
    runAction(() => {
      const raw = new Map<string, string | true>();
      for (const option of self.options) {
        const value: unknown = self.getOptionValue(option.attributeName());
        if (option.long !== undefined && (typeof value === "string" || value === true)) {
          raw.set(option.long, value);
        }
      }
      return runGate(inputSource(file, raw), raw);
    })
  );
}
