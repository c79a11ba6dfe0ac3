/**
 * The checkpoint flags `trace` (also `--listen`) and `prune` share: the signing key, the
 * checkpoint file and the cadence, resolved flag > environment > default into the writer hook
 * of lib/transparency. Business rules stay in lib/.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { KvhError } from "../lib/errors.ts";
import type { ForensicLogOptions } from "../lib/forensic/mod.ts";
import { checkpointer, parseSignerKey } from "../lib/transparency/mod.ts";
import { envNumber, envString, numberOption, readSecretFile } from "./_common.ts";

/** The parsed checkpoint flags. */
export interface CheckpointFlags {
  signingKeyFile?: string;
  checkpointFile?: string;
  checkpointEvery?: number;
  checkpointIntervalSec?: number;
  checkpointHistory?: boolean;
}

const DEFAULT_EVERY = 1000;
const DEFAULT_INTERVAL_SEC = 60;

/** Adds the checkpoint flags to a command. */
// deno-lint-ignore no-explicit-any -- commander's typed Command carries per-command generics; the flags are read back through CheckpointFlags.
export function addCheckpointOptions<C extends Command<any, any, any>>(command: C): C {
  command
    .option(
      "--signing-key-file <file>",
      "sign checkpoints with this Ed25519 signer key from kvh keygen, 0600 (env KV_SIGNING_KEY_FILE)",
    )
    .option(
      "--checkpoint-file <file>",
      "write the latest signed checkpoint here, atomically; put it on another volume (env KV_CHECKPOINT_FILE)",
    )
    .option(
      "--checkpoint-every <n>",
      `sign a checkpoint every N records (env KV_CHECKPOINT_EVERY, default ${DEFAULT_EVERY})`,
      numberOption("--checkpoint-every", { integer: true, min: 1 }),
    )
    .option(
      "--checkpoint-interval-sec <s>",
      `and at least every S seconds while records come (env KV_CHECKPOINT_INTERVAL_SEC, default ${DEFAULT_INTERVAL_SEC})`,
      numberOption("--checkpoint-interval-sec", { min: 0.001 }),
    )
    .option(
      "--checkpoint-history",
      "also keep every checkpoint as <checkpoint-file>.d/<size>.note",
    );
  return command;
}

/** The checkpoint file flags name, for the output guard; undefined when none. */
export function checkpointFileOf(flags: CheckpointFlags): string | undefined {
  return flags.checkpointFile ?? envString("KV_CHECKPOINT_FILE");
}

/**
 * Resolves the checkpoint flags into the writer's `observe` hook, or undefined when neither the
 * key nor the file is given. The key is read here (a secret: 0600, no symlink) and never printed.
 *
 * @throws {KvhError} `flag_invalid` when only one of key and file is given, or a cadence
 * variable is invalid; `key_malformed` for a key that is not a signer key.
 */
export async function resolveCheckpointer(
  flags: CheckpointFlags,
): Promise<ForensicLogOptions["observe"]> {
  const keyFile = flags.signingKeyFile ?? envString("KV_SIGNING_KEY_FILE");
  const checkpointFile = checkpointFileOf(flags);
  if (keyFile === undefined && checkpointFile === undefined) return undefined;
  if (keyFile === undefined || checkpointFile === undefined) {
    throw new KvhError(
      "flag_invalid",
      "Invalid arguments: --signing-key-file and --checkpoint-file go together",
    );
  }
  const everyRecords = flags.checkpointEvery ?? envNumber("KV_CHECKPOINT_EVERY") ?? DEFAULT_EVERY;
  const everySeconds = flags.checkpointIntervalSec ?? envNumber("KV_CHECKPOINT_INTERVAL_SEC") ??
    DEFAULT_INTERVAL_SEC;
  if (!Number.isSafeInteger(everyRecords) || everyRecords < 1 || !(everySeconds > 0)) {
    throw new KvhError(
      "env_invalid",
      "Invalid KV_CHECKPOINT_EVERY or KV_CHECKPOINT_INTERVAL_SEC: expected positive numbers",
    );
  }
  const keyText = new TextDecoder().decode(await readSecretFile(keyFile, "--signing-key-file"));
  const signer = parseSignerKey(keyText);
  return checkpointer({
    signer,
    checkpointFile,
    everyRecords,
    everySeconds,
    history: flags.checkpointHistory === true,
  });
}
