/**
 * Helpers every subcommand shares: exit-code mapping, secrets from files, settings (flag >
 * environment > default, resolved once, here), output files, permission revocation and colour
 * detection. Business rules live in lib/, never here.
 *
 * @module
 */
import { describeIoError, EXIT_USAGE, KvhError } from "../lib/errors.ts";
import { type DecimalBounds, parseDecimal } from "../lib/config/parse_decimal.ts";

export { describeIoError };

/**
 * Runs a subcommand's action and turns its outcome into the process exit code: the action's
 * own return value, or 1/2 from a {@linkcode KvhError}, or 1 with the message for anything else.
 * Diagnostics go to stderr as one line prefixed with `kvh:`.
 */
export async function runAction(action: () => Promise<number>): Promise<void> {
  try {
    Deno.exitCode = await action();
  } catch (error) {
    Deno.exitCode = error instanceof KvhError ? error.exitCode : EXIT_USAGE;
    printError(error);
  }
}

/**
 * Writes an output file a flag names (`--out`, `--metrics-json`, …) atomically, 0600, creating
 * missing parent directories. Any failure is `output_unwritable` (exit 1) naming the flag and path.
 *
 * @param flag The flag, for the message.
 * @param path The file.
 * @param text The contents.
 */
export async function writeOutput(flag: string, path: string, text: string): Promise<void> {
  // Loaded on use (here and in guardOutputs): gate's start-up stays free of node:path when it
  // writes nothing.
  const { writeFileAtomic } = await import("../lib/io/mod.ts");
  try {
    await writeFileAtomic(path, text);
  } catch (error) {
    throw new KvhError(
      "output_unwritable",
      `Cannot write ${flag} ${path}: ${describeIoError(error)}`,
      { cause: error },
    );
  }
}

/**
 * The output guard's hook: refuses (exit 1) any output flag that names the log `log`, a file of
 * its chain, its lock or another forensic log. Call it right after the flags are parsed, before
 * any log is opened, so a refused run changes nothing.
 *
 * @param log The active log the command works on, if any.
 * @param outputs Output paths by flag; unset flags are skipped.
 */
export async function guardOutputs(
  log: string | undefined,
  outputs: Record<string, string | undefined>,
): Promise<void> {
  const targets = Object.entries(outputs).flatMap(([flag, path]) =>
    path === undefined ? [] : [{ flag, path }]
  );
  if (targets.length === 0) return;
  const { refuseEvidenceOutputs } = await import("../lib/io/mod.ts");
  await refuseEvidenceOutputs(log, targets);
}

/**
 * Deno's advice on a denied permission ("…, run again with the --allow-read flag"): kvh's
 * permissions are its own choice (DESIGN.md §3, least privilege), so the advice is dropped.
 */
const DENO_PERMISSION_ADVICE = /,? (run again with|specify the required permissions)[^:]*$/;

/** Prints an error as one line on stderr, without a stack unless KVH_DEBUG is set. */
export function printError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  const line = (message.split("\n")[0] ?? "").replace(DENO_PERMISSION_ADVICE, "");
  console.error(`kvh: ${line}`);
  // The command may have revoked env access already; a diagnostic must never crash on that.
  const canReadEnv =
    Deno.permissions.querySync({ name: "env", variable: "KVH_DEBUG" }).state === "granted";
  if (canReadEnv && Deno.env.get("KVH_DEBUG") && error instanceof Error && error.stack) {
    console.error(error.stack);
  }
}

/** Whether stdout should carry ANSI colour: a terminal, and `NO_COLOR` unset or empty. */
export function useColor(stream: { isTerminal(): boolean } = Deno.stdout): boolean {
  const noColor = Deno.env.get("NO_COLOR");
  return stream.isTerminal() && (noColor === undefined || noColor === "");
}

/**
 * Reads a secret (HMAC key, bearer token) from a file. Refuses a symlink and a file readable by
 * group or others, as DESIGN.md §8 asks; strips one trailing newline so `echo secret > key`
 * works. The message names the flag and the path, never the contents.
 */
export async function readSecretFile(path: string, flag: string): Promise<Uint8Array> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    throw new KvhError(
      "secret_unreadable",
      `Cannot read ${flag} ${path}: ${describeIoError(error)}`,
      {
        cause: error,
      },
    );
  }
  if (info.isSymlink) {
    throw new KvhError("secret_symlink", `Refusing ${flag} ${path}: it is a symlink`);
  }
  if (!info.isFile) {
    throw new KvhError("secret_not_file", `Refusing ${flag} ${path}: not a regular file`);
  }
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    throw new KvhError(
      "secret_permissions",
      `Refusing ${flag} ${path}: mode ${
        (info.mode & 0o777).toString(8)
      } lets others read it (chmod 600)`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new KvhError(
      "secret_unreadable",
      `Cannot read ${flag} ${path}: ${describeIoError(error)}`,
      {
        cause: error,
      },
    );
  }
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  if (end === 0) throw new KvhError("secret_empty", `Refusing ${flag} ${path}: the file is empty`);
  return bytes.subarray(0, end);
}

/**
 * The HMAC key of the forensic log: `--hmac-key-file` wins over `FORENSIC_HMAC_SECRET`; an empty
 * variable means no key, as in the Python tool.
 */
export async function resolveHmacKey(keyFile: string | undefined): Promise<Uint8Array | undefined> {
  if (keyFile !== undefined) return await readSecretFile(keyFile, "--hmac-key-file");
  const fromEnv = Deno.env.get("FORENSIC_HMAC_SECRET");
  return fromEnv ? new TextEncoder().encode(fromEnv) : undefined;
}

/** A string from the environment, or `undefined` when unset or empty. */
export function envString(name: string): string | undefined {
  const value = Deno.env.get(name);
  return value === undefined || value === "" ? undefined : value;
}

/**
 * Parses a setting's text; `source` is the flag or environment variable it came from, named in
 * the error (`flag_invalid` for a flag, `env_invalid` for a variable, exit 1).
 */
export type SettingParser<T> = (text: string, source: string) => T;

/** The code of a bad setting value: `flag_invalid` for a flag, `env_invalid` for a variable. */
export function settingErrorCode(source: string): "flag_invalid" | "env_invalid" {
  return source.startsWith("-") ? "flag_invalid" : "env_invalid";
}

/** The usage error of a bad setting value, coded by where it came from. */
export function invalidSetting(source: string, why: string): KvhError {
  return new KvhError(settingErrorCode(source), `Invalid ${source}: ${why}`);
}

/**
 * One setting, resolved as DESIGN.md §3 says once for every command: the flag's value, else the
 * environment variable's (an empty variable counts as unset, as in the Python tool), else
 * `undefined` for the caller's `?? default`. The variable's text goes through `parse`, so a bad
 * value is a usage error naming the variable, never a silent default.
 *
 * @param flagValue What commander parsed from the flag, if it was given.
 * @param env The environment variable.
 * @param parse Parser of the variable's text (the flag's own parser should be the same one).
 * @returns The value, or `undefined` when neither source has one.
 */
export function setting<T>(
  flagValue: T | undefined,
  env: string,
  parse: SettingParser<T>,
): T | undefined {
  if (flagValue !== undefined) return flagValue;
  const text = envString(env);
  return text === undefined ? undefined : parse(text, env);
}

/** A setting's text as is: paths and names. */
export const textSetting: SettingParser<string> = (text) => text;

/**
 * How `--help` names a setting's variable and default, the same way for every command:
 * `<help> (env NAME; default D)`.
 *
 * @param help What the option does.
 * @param env The environment variable.
 * @param fallback The default, as shown, when there is one.
 */
export function withEnv(help: string, env: string, fallback?: string | number): string {
  return `${help} (env ${env}${fallback === undefined ? "" : `; default ${fallback}`})`;
}

/**
 * A parser of decimal numbers within bounds, for a flag and its variable alike (the same rules
 * as the gate's thresholds: lib/config/parse_decimal.ts).
 *
 * @param bounds Whole numbers only, and the range.
 * @returns The parser.
 */
export function numberSetting(bounds: DecimalBounds = {}): SettingParser<number> {
  return (text, source) => parseDecimal(text, bounds, source, settingErrorCode(source));
}

/** The spellings a boolean variable accepts (README, Configuration); anything else is an error. */
const BOOLEANS: Record<string, boolean> = {
  "1": true,
  true: true,
  yes: true,
  on: true,
  "0": false,
  false: false,
  no: false,
  off: false,
};

/** A boolean variable: `1/true/yes/on` or `0/false/no/off`, any case; anything else is an error. */
export const booleanSetting: SettingParser<boolean> = (text, source) => {
  const value = BOOLEANS[text.trim().toLowerCase()];
  if (value === undefined) {
    throw invalidSetting(
      source,
      `expected one of 1, true, yes, on, 0, false, no, off, got ${JSON.stringify(text)}`,
    );
  }
  return value;
};

/**
 * Parses a numeric flag value for commander; a bad value is a usage error naming the flag.
 *
 * @param flag The flag's name, used in the message.
 * @param bounds Whole numbers only, and the range.
 */
export function numberOption(flag: string, bounds: DecimalBounds = {}): (text: string) => number {
  const parse = numberSetting(bounds);
  return (text) => parse(text, flag);
}

/**
 * Revokes every Deno permission a subcommand does not need, right after its flags are parsed
 * (DESIGN.md §3, least privilege). Permissions that were never granted are left alone.
 */
export async function revokePermissionsExcept(keep: readonly Deno.PermissionName[]): Promise<void> {
  const all: Deno.PermissionName[] = ["run", "net", "ffi", "sys", "env", "write", "read"];
  for (const name of all) {
    if (!keep.includes(name)) await Deno.permissions.revoke({ name });
  }
}
