/**
 * `kvh gate METRICS.json` (DESIGN.md §3): applies hygiene thresholds to a metrics file and exits
 * 0 (pass), 2 (a check failed) or 1 (unreadable or malformed input, a missing metric, bad flags).
 * Parses flags (lib/gate/flags.ts), resolves them with the environment and the policy, calls
 * `runGate` (lib/gate/run_gate.ts) and prints the verdict.
 *
 * Start-up time is part of the contract (a CI step runs this on every build): this module imports
 * neither commander nor the forensic code up front. `runGateFast` uses the fast parser so
 * `cli/main.ts` can skip loading commander (about 45 ms); anything it does not recognise falls
 * back to the commander tree, which gives help and the usual usage errors.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { KvhError } from "../lib/errors.ts";
import { GATE_FLAGS, parseGateArgs, type RawFlags } from "../lib/gate/flags.ts";
import { fileInput, fleetInput, type GateInput, runGate } from "../lib/gate/run_gate.ts";
import { resolveThresholds } from "../lib/gate/thresholds.ts";
import { renderVerdictTable } from "../lib/gate/verdict_table.ts";
import {
  envString,
  guardOutputs,
  resolveHmacKey,
  revokePermissionsExcept,
  runAction,
  useColor,
} from "./_common.ts";

function stringFlag(raw: RawFlags, long: string): string | undefined {
  const value = raw.get(long);
  return typeof value === "string" ? value : undefined;
}

/** Fails with a usage error when `flag` is given without the flag it depends on. */
function requireWith(raw: RawFlags, flag: string, needs: string, usage: string): void {
  if (raw.has(flag) && !raw.has(needs)) {
    throw new KvhError("flag_invalid", `Invalid ${flag}: it needs ${needs} ${usage}`);
  }
}

/** The metrics file, or the fleet (DESIGN.md §7) when `--prometheus` is given. */
function gateInput(path: string | undefined, raw: RawFlags): GateInput {
  const url = stringFlag(raw, "--prometheus");
  if (url === undefined) {
    requireWith(raw, "--selector", "--prometheus", "URL");
    if (path === undefined) {
      throw new KvhError(
        "gate_no_input",
        "Missing metrics file: usage is kvh gate METRICS.json [options]",
      );
    }
    return fileInput(path);
  }
  if (path !== undefined) {
    throw new KvhError("flag_invalid", `Invalid --prometheus: give it or ${path}, not both`);
  }
  return fleetInput(url, stringFlag(raw, "--selector"));
}

/** Resolves the flags with the policy and the environment, then runs the gate. */
async function gate(path: string | undefined, raw: RawFlags): Promise<number> {
  const input = gateInput(path, raw);
  requireWith(raw, "--hmac-key-file", "--require-verified", "LOG");
  requireWith(raw, "--chain-only", "--require-verified", "LOG");
  requireWith(raw, "--keyring", "--require-verified", "LOG");
  requireWith(raw, "--test-report", "--evidence", "DIR");
  const policyPath = stringFlag(raw, "--policy");
  let policy;
  if (policyPath !== undefined) {
    const { readGatePolicy, gatePolicyThresholds } = await import("../lib/gate/policy.ts");
    policy = gatePolicyThresholds(await readGatePolicy(policyPath));
  }
  const thresholds = resolveThresholds({
    flag: (long) => stringFlag(raw, long),
    policy,
    env: envString,
  });
  const requireVerified = stringFlag(raw, "--require-verified");
  let hmacKey: Uint8Array | undefined;
  let macKeyring: Uint8Array[] | undefined;
  if (requireVerified !== undefined) {
    hmacKey = await resolveHmacKey(stringFlag(raw, "--hmac-key-file"));
    // Loaded only here: start-up without --require-verified stays free of the forensic code.
    const { resolveKeyring } = await import("./_mac_options.ts");
    macKeyring = await resolveKeyring(stringFlag(raw, "--keyring"), hmacKey);
  }
  const out = stringFlag(raw, "--out");
  const evidence = stringFlag(raw, "--evidence");
  const color = useColor();
  await guardOutputs(requireVerified, { "--out": out, "--evidence": evidence });
  await revokePermissionsExcept(["read", "write", ...input.permissions]);
  const document = await runGate(input, {
    thresholds,
    requireVerified,
    hmacKey,
    macKeyring,
    chainOnly: raw.get("--chain-only") === true,
    out,
    evidence,
    testReport: stringFlag(raw, "--test-report"),
  });
  console.log(raw.has("--json") ? JSON.stringify(document) : renderVerdictTable(document, color));
  return document.pass ? 0 : 2;
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
  await runAction(() => gate(parsed.file, parsed.raw));
  return typeof Deno.exitCode === "number" ? Deno.exitCode : 0;
}

/**
 * The `gate` command tree with `action` receiving what commander parsed, in the fast parser's
 * shape; tests compare the two parsers through it.
 *
 * @param action Receives the metrics file and the flags as given.
 * @returns The command.
 */
export async function gateCommandTree(
  action: (file: string | undefined, raw: RawFlags) => Promise<void>,
) {
  const { Command: CommandClass } = await import("@commander-js/extra-typings");
  const command: Command<[string | undefined]> = new CommandClass("gate")
    .description(
      "Apply hygiene thresholds to a metrics file (kvh's metrics JSON or the Python tool's " +
        'coverage.json, flat or under "metrics").\n' +
        "Replaces: python tools/eviction_checker.py METRICS [flags] (its flags keep working).\n" +
        "Exit codes: 0 pass, 2 a check failed (or a failed or interrupted run, or log MACs not " +
        "checked), 1 unreadable or malformed input, a missing metric, unknown policy keys or " +
        "bad flags.",
    )
    .argument("[metrics]", "metrics JSON file");
  for (const spec of GATE_FLAGS) {
    command.option(
      spec.value === undefined ? spec.long : `${spec.long} <${spec.value}>`,
      spec.description,
    );
  }
  return command.action((file, _options, self) => {
    const raw = new Map<string, string | true>();
    for (const option of self.options) {
      const value: unknown = self.getOptionValue(option.attributeName());
      if (option.long !== undefined && (typeof value === "string" || value === true)) {
        raw.set(option.long, value);
      }
    }
    return action(file, raw);
  });
}

/**
 * The `gate` subcommand for the commander tree (help, and arguments the fast parser leaves to
 * commander).
 *
 * @returns The command.
 */
export function gateCommand() {
  return gateCommandTree((file, raw) => runAction(() => gate(file, raw)));
}
