/**
 * Checks a kvh command line the way kvh itself would parse it: kvh's own commander tree
 * (`buildProgram` of cli/main.ts) with every action replaced by a no-op, so nothing runs.
 */
import { buildProgram } from "../../cli/main.ts";

/**
 * Flags that documents and manifests use before they land with another issue: a command line
 * using one that kvh does not have yet is skipped, and its test name says why.
 */
export const PENDING_FLAGS: Record<string, string> = {
  "--signing-key-file": "signed checkpoints, issue 12",
  "--checkpoint-file": "signed checkpoints, issue 12",
};

const program = await buildProgram();
const KNOWN_FLAGS = new Map(
  program.commands.map((command) => [
    command.name(),
    new Set(command.options.flatMap((option) => option.long ?? [])),
  ]),
);

/** The long flags of subcommand `name` (with `--help`), or `undefined` if kvh has no such command. */
export function knownFlags(name: string): Set<string> | undefined {
  const flags = KNOWN_FLAGS.get(name);
  return flags === undefined ? undefined : new Set([...flags, "--help"]);
}

/**
 * Why the command line `args` (without `kvh`) cannot be checked yet, or `""` when it can: it
 * uses a flag of {@linkcode PENDING_FLAGS} that its subcommand does not have on this checkout.
 */
export function pendingReason(args: string[]): string {
  const command = args[0]!;
  const pending = args.map((arg) => arg.split("=")[0]!)
    .filter((flag) => flag in PENDING_FLAGS && !KNOWN_FLAGS.get(command)?.has(flag));
  if (pending.length === 0) return "";
  const issues = [...new Set(pending.map((flag) => PENDING_FLAGS[flag]))].join(", ");
  return ` (SKIPPED: kvh ${command} has no ${pending.join(", ")} on main yet; ${issues})`;
}

/** Parses `args` (without `kvh`) with kvh's command tree; throws what kvh would report. */
export async function parseKvhArgs(args: string[]): Promise<void> {
  const tree = await buildProgram([args[0]!]);
  for (const command of [tree, ...tree.commands]) {
    command.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    if (command !== tree) command.action(() => {});
  }
  await tree.parseAsync(args, { from: "user" });
}
