/**
 * Checks a kvh command line the way kvh itself would parse it: kvh's own commander tree
 * (`buildProgram` of cli/main.ts) with every action replaced by a no-op, so nothing runs.
 */
import { buildProgram } from "../../cli/main.ts";

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

/** Parses `args` (without `kvh`) with kvh's command tree; throws what kvh would report. */
export async function parseKvhArgs(args: string[]): Promise<void> {
  const tree = await buildProgram([args[0]!]);
  for (const command of [tree, ...tree.commands]) {
    command.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    if (command !== tree) command.action(() => {});
  }
  await tree.parseAsync(args, { from: "user" });
}
