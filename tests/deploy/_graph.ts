/** The module graph `deno compile` bundles: cli/main.ts plus every `--include` of the task. */
import assert from "node:assert/strict";
import { compileTaskFlags, ROOT } from "../cli/_kvh.ts";

/** One module of `deno info --json`. */
export interface GraphModule {
  specifier: string;
  error?: string;
  dependencies?: { specifier: string; code?: { specifier: string }; isDynamic?: boolean }[];
}

/** The files the compile task names with `--include`, relative to the repository. */
export function compileIncludes(): string[] {
  return compileTaskFlags().filter((_, i, flags) => flags[i - 1] === "--include");
}

async function moduleGraph(entry: string): Promise<GraphModule[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout)).modules;
}

/** Every module of cli/main.ts's graph and of each included file's graph. */
export async function compileGraph(): Promise<GraphModule[]> {
  const graphs = await Promise.all(["cli/main.ts", ...compileIncludes()].map(moduleGraph));
  return graphs.flat();
}

/** A graph module's path relative to the repository, or `undefined` for npm and remote ones. */
export function localPath(specifier: string): string | undefined {
  const prefix = `file://${ROOT}`;
  return specifier.startsWith(prefix) ? specifier.slice(prefix.length) : undefined;
}
