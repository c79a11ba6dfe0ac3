/**
 * The flags of `kvh gate`, once: the table both the commander tree (help, unusual command lines)
 * and the fast parser read, and the fast parser itself. Threshold flags come from
 * {@linkcode THRESHOLDS}, so a threshold's flag, help, environment variable and default are
 * written in one place.
 *
 * The fast parser keeps `kvh gate`'s start-up low (commander costs about 45 ms to load): it
 * understands plain command lines and returns `undefined` for anything else, which the caller
 * hands to commander. tests/cli/gate_args_test.ts checks that both accept the same command
 * lines with the same values.
 *
 * @module
 */
import { THRESHOLDS, type ThresholdSpec } from "./thresholds.ts";

/** One flag of `kvh gate`. */
export interface GateFlagSpec {
  /** The long flag, e.g. `--coverage-min`. */
  long: string;
  /** Name of the flag's value in help; absent for a switch. */
  value?: string;
  /** Help text. */
  description: string;
  /** The threshold the flag sets, for threshold flags. */
  threshold?: ThresholdSpec;
}

/** Parsed flags keyed by long flag name: the value as given, or `true` for a switch. */
export type RawFlags = ReadonlyMap<string, string | true>;

function thresholdFlags(spec: ThresholdSpec): GateFlagSpec[] {
  const setBy = [
    spec.env === undefined ? "" : `env ${spec.env}, `,
    `policy ${spec.policyKey}, `,
    spec.default === undefined ? "off unless set" : `default ${spec.default}`,
  ].join("");
  const [main, ...aliases] = spec.flags;
  return [
    { long: main!, value: spec.valueName, description: `${spec.help} (${setBy})`, threshold: spec },
    ...aliases.map((alias) => ({
      long: alias,
      value: spec.valueName,
      description: `alias of ${main} (the Python tool's name)`,
      threshold: spec,
    })),
  ];
}

/** Every flag of `kvh gate`, in help order. */
export const GATE_FLAGS: readonly GateFlagSpec[] = [
  ...THRESHOLDS.flatMap(thresholdFlags),
  {
    long: "--policy",
    value: "file",
    description: `thresholds as JSON (${
      THRESHOLDS.map((spec) => spec.policyKey).join(", ")
    }); flags override it, it overrides the environment`,
  },
  {
    long: "--out",
    value: "file",
    description: "also write the verdict JSON here (0600, atomic, parents created). Unlike the " +
      "Python tool, nothing is written unless asked: pass --out forensics/verdict.json for its " +
      "old default",
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
    long: "--keyring",
    value: "file",
    description: "initial keys of a rekeyed forward-secure --require-verified log, lines " +
      "<key id> <path|base64:key> (0600; env KV_MAC_KEYRING; needs --hmac-key-file)",
  },
  {
    long: "--chain-only",
    description: "accept a --require-verified log whose MACs cannot be checked for want of a " +
      "key: only its hash chain is verified, which anyone able to rewrite the log can recompute",
  },
  {
    long: "--evidence",
    value: "dir",
    description: "write an evidence bundle (metrics, verdict, verification, test report, " +
      "MANIFEST.sha256) to this new directory (parents created); with --out, both appear or " +
      "neither",
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

const FLAG_BY_NAME: ReadonlyMap<string, GateFlagSpec> = new Map(
  GATE_FLAGS.map((spec) => [spec.long, spec]),
);

/**
 * Parses `kvh gate` arguments without commander.
 *
 * @param args Arguments after `gate`.
 * @returns The metrics file (if any) and the flags as given, or `undefined` for anything
 * unusual (help, unknown or short flags, `--`, a missing value, a repeated flag, several files),
 * which commander then answers with its usual help or usage error.
 *
 * @example Usage
 * ```ts
 * import { parseGateArgs } from "./flags.ts";
 * import assert from "node:assert/strict";
 *
 * const parsed = parseGateArgs(["m.json", "--coverage-min=99.5", "--json"]);
 * assert.equal(parsed?.file, "m.json");
 * assert.equal(parsed?.raw.get("--coverage-min"), "99.5");
 * assert.equal(parseGateArgs(["--help"]), undefined);
 * ```
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
    // A repeated flag: commander keeps the last; leave that rare case to it.
    if (spec === undefined || raw.has(name)) return undefined;
    if (spec.value === undefined) {
      if (equals >= 0) return undefined;
      raw.set(name, true);
      continue;
    }
    const value = equals >= 0 ? arg.slice(equals + 1) : args[++i];
    // commander takes a value that starts with "-" only when it is a negative number.
    if (value === undefined || (equals < 0 && value.startsWith("-"))) return undefined;
    raw.set(name, value);
  }
  if (files.length > 1) return undefined;
  return { file: files[0], raw };
}
