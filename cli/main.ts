/**
 * The `kvh` command: builds the commander tree and runs one subcommand.
 *
 * Subcommands are loaded lazily: only the module of the command being run is imported, so
 * `kvh gate` in a CI step does not pay for the GPU, tracer or server code.
 *
 * @module
 */
// Type-only: loading commander costs ~45 ms, which the fast paths of gate, verify and trace avoid
// (CommandEntry.fast).
import type { Command } from "@commander-js/extra-typings";
import { describeIoError, KvhError } from "../lib/errors.ts";
import config from "../deno.json" with { type: "json" };
import { printError } from "./_common.ts";

/** kvh's version: the `version` of deno.json, the one the container images are tagged with. */
export const VERSION: string = config.version;

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
    fast: async (args) => (await import("./trace.ts")).runTraceFast(args),
  },
  "sanitize-bench": {
    load: async () => (await import("./sanitize_bench.ts")).sanitizeBenchCommand(),
  },
  "serve-metrics": {
    load: async () => (await import("./serve_metrics.ts")).serveMetricsCommand(),
  },
  verify: {
    load: async () => (await import("./verify.ts")).verifyCommand(),
    fast: async (args) => (await import("./verify.ts")).runVerifyFast(args),
  },
  prune: {
    load: async () => (await import("./prune.ts")).pruneCommand(),
  },
  keygen: {
    load: async () => (await import("./keygen.ts")).keygenCommand(),
  },
};

/**
 * Builds the `kvh` command tree with the subcommands in `names` (every one by default) without
 * running anything, so tests and tools can parse a command line with kvh's own rules.
 *
 * @param names Subcommands to load; loading one imports its module.
 * @returns The program; its errors throw a `CommanderError` instead of exiting.
 */
export async function buildProgram(
  names: readonly string[] = Object.keys(COMMANDS),
): Promise<AnyCommand> {
  const { Command } = await import("@commander-js/extra-typings");
  const program = new Command("kvh")
    .description(
      "KV-cache hygiene for multi-tenant LLM serving: scrub, prove, verify, gate.\n\n" +
        "Exit codes: 0 success, 1 usage or operational error, 2 policy or integrity failure.",
    )
    .version(VERSION, "-V, --version", "print the kvh and Deno versions and the CUDA library")
    .showHelpAfterError("(run kvh --help for usage)")
    .exitOverride();
  for (const name of names) {
    const command = await COMMANDS[name]!.load();
    program.addCommand(command.exitOverride());
  }
  // addCommand does not pass settings down, so each command gets them here.
  for (const command of [program, ...program.commands]) {
    command.configureHelp(HELP_LAYOUT).configureOutput(ERROR_OUTPUT);
  }
  return program;
}

/**
 * Help wraps at the terminal's width (commander's default gives up below 40 columns for the
 * option descriptions, which left long lines on an 80-column terminal).
 */
const HELP_LAYOUT = { minWidthToWrap: 24 };

/** commander's own usage errors in kvh's shape: `kvh: Invalid arguments: unknown option '--x'`. */
const ERROR_OUTPUT = {
  outputError: (text: string, write: (text: string) => void) =>
    write(text.replace(/^error: /, "kvh: Invalid arguments: ")),
};

/**
 * What `kvh --version` prints: kvh's version, Deno's, and where the CUDA library and the native
 * helpers of ffi/native/ were found (the first existing candidate of each binding's search order), or that
 * they were not.
 */
async function versionText(): Promise<string> {
  const { cudaLibraryCandidates } = await import("../ffi/cuda/binding.ts");
  const { nativeLibraryCandidates } = await import("../ffi/native/open_library.ts");
  const cudaPath = Deno.env.get("KVH_CUDA_LIB");
  const libraries = [
    ["cuda library", cudaLibraryCandidates({ libraryPath: cudaPath || undefined })],
    ["cpu library", nativeLibraryCandidates("libkvh_cpu.so")],
    ["hash library", nativeLibraryCandidates("libkvh_hash.so")],
    ["pool library", nativeLibraryCandidates("libkvh_pool.so")],
  ] as const;
  const lines = [`kvh ${VERSION}`, `deno ${Deno.version.deno}`];
  for (const [label, candidates] of libraries) {
    const found = candidates.find(isFile);
    lines.push(
      found === undefined
        ? `${label}: not found (looked in ${candidates.join(", ")})`
        : `${label}: found at ${found}`,
    );
  }
  return lines.join("\n");
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
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
  if (args.length === 1 && (first === "--version" || first === "-V")) {
    console.log(await versionText());
    return 0;
  }
  const { CommanderError } = await import("@commander-js/extra-typings");
  const name = args.find((arg) => !arg.startsWith("-"));
  const program = await buildProgram(
    name !== undefined && Object.hasOwn(COMMANDS, name) ? [name] : Object.keys(COMMANDS),
  );
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

/**
 * `deno task kvh` runs in the folder of deno.json, so the task passes the caller's folder (the
 * `INIT_CWD` deno task sets) as `KVH_CWD`: relative paths then mean what the caller meant.
 */
function enterCallerDirectory(): void {
  const dir = Deno.env.get("KVH_CWD");
  if (dir === undefined || dir === "") return;
  try {
    Deno.chdir(dir);
  } catch (error) {
    throw new KvhError("cwd_unusable", `Cannot enter KVH_CWD ${dir}: ${describeIoError(error)}`, {
      cause: error,
    });
  }
}

if (import.meta.main) {
  try {
    enterCallerDirectory();
    Deno.exitCode = await main(Deno.args);
  } catch (error) {
    printError(error);
    Deno.exitCode = 1;
  }
}
