/**
 * The `kvh` command: builds the commander tree and runs one subcommand.
 *
 * Subcommands are loaded lazily: only the module of the command being run is imported, so
 * `kvh gate` in a CI step does not pay for the GPU, tracer or server code.
 *
 * @module
 */
// Type-only: loading commander costs ~45 ms, which `kvh gate`'s fast path avoids (CommandEntry.fast).
import type { Command } from "@commander-js/extra-typings";
import { printError } from "./_common.ts";

/** Version printed by `kvh --version`. */
export const VERSION = "0.1.0";

// deno-lint-ignore no-explicit-any -- commander's typed Command carries per-command generics that differ between subcommands; the tree only needs the base shape.
type AnyCommand = Command<any, any, any>;

interface CommandEntry {
  load: () => Promise<AnyCommand>;
  /**
   * Runs the command without commander when its arguments are plain (start-up time); resolves
   * to `undefined` to leave them to the commander tree (help, usage errors).
   */
  fast?: (args: string[]) => Promise<number | undefined>;
}

/** Every subcommand, loaded only when it is the one being run (or for `kvh --help`). */
const COMMANDS: Record<string, CommandEntry> = {
  gate: {
    load: async () => (await import("./gate.ts")).gateCommand(),
    fast: async (args) => (await import("./gate.ts")).runGateFast(args),
  },
  trace: {
    load: async () => (await import("./trace.ts")).traceCommand(),
  },
  "sanitize-bench": {
    load: async () => (await import("./sanitize_bench.ts")).sanitizeBenchCommand(),
  },
  "serve-metrics": {
    load: async () => (await import("./serve_metrics.ts")).serveMetricsCommand(),
  },
  verify: {
    load: async () => (await import("./verify.ts")).verifyCommand(),
  },
  prune: {
    load: async () => (await import("./prune.ts")).pruneCommand(),
  },
  keygen: {
    load: async () => (await import("./keygen.ts")).keygenCommand(),
  },
};

async function buildProgram(): Promise<AnyCommand> {
  const { Command } = await import("@commander-js/extra-typings");
  return new Command("kvh")
    .description(
      "KV-cache hygiene for multi-tenant LLM serving: scrub, prove, verify, gate.\n\n" +
        "Exit codes: 0 success, 1 usage or operational error, 2 policy or integrity failure.",
    )
    .version(VERSION)
    .showHelpAfterError("(run kvh --help for usage)")
    .exitOverride();
}

/**
 * Parses `args` (without the program name), runs the chosen subcommand and returns the exit
 * code it set.
 */
export async function main(args: string[]): Promise<number> {
  const first = args[0];
  const fast = first !== undefined && Object.hasOwn(COMMANDS, first)
    ? COMMANDS[first]!.fast
    : undefined;
  const fastCode = fast === undefined ? undefined : await fast(args.slice(1));
  if (fastCode !== undefined) return fastCode;
  const program = await buildProgram();
  const { CommanderError } = await import("@commander-js/extra-typings");
  const name = args.find((arg) => !arg.startsWith("-"));
  const wanted = name !== undefined && name in COMMANDS ? [name] : Object.keys(COMMANDS);
  for (const key of wanted) {
    const command = await COMMANDS[key]!.load();
    program.addCommand(command.exitOverride());
  }
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 1;
    }
    printError(error);
    return 1;
  }
  return typeof Deno.exitCode === "number" ? Deno.exitCode : 0;
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
