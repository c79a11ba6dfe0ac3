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
import { numberSetting, readSecretFile, setting, textSetting, withEnv } from "./_common.ts";

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
const EVERY_RECORDS = numberSetting({ integer: true, min: 1 });
const EVERY_SECONDS = numberSetting({ min: 0.001 });

/** Adds the checkpoint flags to a command. */
// deno-lint-ignore no-explicit-any -- commander's typed Command carries per-command generics; the flags are read back through CheckpointFlags.
export function addCheckpointOptions<C extends Command<any, any, any>>(command: C): C {
  command
    .option(
      "--signing-key-file <file>",
      withEnv(
        "sign checkpoints with this Ed25519 signer key from kvh keygen, 0600",
        "KV_SIGNING_KEY_FILE",
      ),
    )
    .option(
      "--checkpoint-file <file>",
      withEnv(
        "write the latest signed checkpoint here, atomically; put it on another volume",
        "KV_CHECKPOINT_FILE",
      ),
    )
    .option(
      "--checkpoint-every <n>",
      withEnv("sign a checkpoint every N records", "KV_CHECKPOINT_EVERY", DEFAULT_EVERY),
      (text) => EVERY_RECORDS(text, "--checkpoint-every"),
    )
    .option(
      "--checkpoint-interval-sec <s>",
      withEnv(
        "and at least every S seconds while records come",
        "KV_CHECKPOINT_INTERVAL_SEC",
        DEFAULT_INTERVAL_SEC,
      ),
      (text) => EVERY_SECONDS(text, "--checkpoint-interval-sec"),
    )
    .option(
      "--checkpoint-history",
      "also keep every checkpoint as <checkpoint-file>.d/<size>.note",
    );
  return command;
}

/** The checkpoint file flags name, for the output guard; undefined when none. */
export function checkpointFileOf(flags: CheckpointFlags): string | undefined {
  return setting(flags.checkpointFile, "KV_CHECKPOINT_FILE", textSetting);
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
  const keyFile = setting(flags.signingKeyFile, "KV_SIGNING_KEY_FILE", textSetting);
  const checkpointFile = checkpointFileOf(flags);
  if (keyFile === undefined && checkpointFile === undefined) return undefined;
  if (keyFile === undefined || checkpointFile === undefined) {
    throw new KvhError(
      "flag_invalid",
      "Invalid arguments: --signing-key-file and --checkpoint-file go together",
    );
  }
  const everyRecords = setting(flags.checkpointEvery, "KV_CHECKPOINT_EVERY", EVERY_RECORDS) ??
    DEFAULT_EVERY;
  const everySeconds =
    setting(flags.checkpointIntervalSec, "KV_CHECKPOINT_INTERVAL_SEC", EVERY_SECONDS) ??
      DEFAULT_INTERVAL_SEC;
  const keyText = new TextDecoder().decode(await readSecretFile(keyFile, "--signing-key-file"));
  // Loaded here, not at import: a run without checkpoints (most traces) never needs the tree,
  // note and signing modules, and loading them is part of every kvh start.
  const { checkpointer, parseSignerKey } = await import("../lib/transparency/mod.ts");
  const signer = parseSignerKey(keyText);
  return checkpointer({
    signer,
    checkpointFile,
    everyRecords,
    everySeconds,
    history: flags.checkpointHistory === true,
  });
}
