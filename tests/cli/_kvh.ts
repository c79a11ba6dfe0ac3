/** Runs `deno run -A cli/main.ts …` as a child process, the way a CI step or CronJob runs kvh. */

/** The repository root. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** What a kvh process printed and how it exited. */
export interface KvhRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs kvh with `args`, extra environment variables and a working directory; stdout is not a
 * terminal, so there is no colour.
 */
export async function runKvh(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<KvhRun> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli/main.ts`, ...args],
    env: options.env,
    cwd: options.cwd ?? ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
