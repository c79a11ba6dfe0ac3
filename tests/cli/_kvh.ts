/**
 * Runs `deno run -A cli/main.ts …` as a child process, the way a CI step or CronJob runs kvh.
 * With `KVH_TEST_PERMISSIONS=compile`, every CLI test runs kvh with exactly the permissions of
 * `deno task compile` instead of `-A`, which is how tests/deploy/compile_test.ts proves that the
 * single binary's permissions are enough.
 */

/** The repository root. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * The flags of the `deno compile` command in deno.json's `compile` task (everything between
 * `deno compile` and the entry point), in order.
 */
export function compileTaskFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const task: string = config.tasks.compile;
  const command = task.split("&&")[0]!.trim().split(/\s+/);
  if (command[0] !== "deno" || command[1] !== "compile") {
    throw new Error(`The compile task does not start with deno compile: ${task}`);
  }
  return command.slice(2, -1);
}

/** The permission flags of the `kvh` task in deno.json (`deno task kvh`). */
export function kvhTaskPermissions(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  return (config.tasks.kvh as string).match(/--(allow|deny)-[a-z-]+(=\S+)?/g) ?? [];
}

/** The permission flags of `deno task compile`. */
export function compilePermissions(): string[] {
  return compileTaskFlags().filter((flag) => /^--(allow|deny)-/.test(flag));
}

/**
 * `deno` arguments that run kvh's entry point: `run`, the permissions (`-A`, or those of the
 * compile task under `KVH_TEST_PERMISSIONS=compile`), then the path of cli/main.ts.
 */
export function kvhRunArgs(): string[] {
  const permissions = Deno.env.get("KVH_TEST_PERMISSIONS") === "compile"
    ? compilePermissions()
    : ["-A"];
  return ["run", ...permissions, `${ROOT}cli/main.ts`];
}

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
export function runKvh(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<KvhRun> {
  return runProgram(Deno.execPath(), [...kvhRunArgs(), ...args], {
    env: options.env,
    cwd: options.cwd ?? ROOT,
  });
}

/** Runs any program to completion and decodes what it printed (the kvh launcher, a script). */
export async function runProgram(
  program: string,
  args: string[],
  options: Pick<Deno.CommandOptions, "env" | "cwd" | "clearEnv"> = {},
): Promise<KvhRun> {
  const output = await new Deno.Command(program, {
    ...options,
    args,
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
