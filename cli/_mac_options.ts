/**
 * The forward-secure MAC flags: `--mac-state-file` and `--mac-epoch-records` for the writers
 * (`trace`, also `--listen`, and `prune`), `--keyring` for `verify` and `gate
 * --require-verified`. The CLI owns the state file;
 * the logic is lib/forensic/epoch_key.ts.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { dirname, isAbsolute, join } from "../lib/io/path.ts";
import { KvhError } from "../lib/errors.ts";
import {
  checkKeyringKey,
  type EpochMacKeys,
  openMacState,
  parseKeyring,
} from "../lib/forensic/epoch_key.ts";
import { numberSetting, readSecretFile, setting, textSetting, withEnv } from "./_common.ts";

/** The parsed writer flags. */
export interface MacStateFlags {
  macStateFile?: string;
  macEpochRecords?: number;
}

const DEFAULT_EPOCH_RECORDS = 10000;
const EPOCH_RECORDS = numberSetting({ integer: true, min: 1 });

/** Adds `--mac-state-file` and `--mac-epoch-records` to a writing command. */
// deno-lint-ignore no-explicit-any -- commander's typed Command carries per-command generics; the flags are read back through MacStateFlags.
export function addMacStateOptions<C extends Command<any, any, any>>(command: C): C {
  command
    .option(
      "--mac-state-file <file>",
      withEnv(
        "forward-secure MACs: the current epoch key, rewritten (0600) at each epoch; created " +
          "from --hmac-key-file, which then belongs offline",
        "KV_MAC_STATE_FILE",
      ),
    )
    .option(
      "--mac-epoch-records <n>",
      withEnv(
        "records per MAC epoch (the key also evolves at each rotation)",
        "KV_MAC_EPOCH_RECORDS",
        DEFAULT_EPOCH_RECORDS,
      ),
      (text) => EPOCH_RECORDS(text, "--mac-epoch-records"),
    );
  return command;
}

/** The state file the flags name, for the output guard; undefined when none. */
export function macStateFileOf(flags: MacStateFlags): string | undefined {
  return setting(flags.macStateFile, "KV_MAC_STATE_FILE", textSetting);
}

/**
 * Opens the forward-secure key state the flags name, or undefined without `--mac-state-file`.
 *
 * @param flags The parsed flags.
 * @param initialKey `--hmac-key-file`: starts a new state, or rekeys (a writer that must not
 * rekey, as prune, passes undefined).
 */
export async function resolveMacKeys(
  flags: MacStateFlags,
  initialKey: Uint8Array | undefined,
): Promise<EpochMacKeys | undefined> {
  const path = macStateFileOf(flags);
  if (path === undefined) return undefined;
  const recordsPerEpoch = setting(flags.macEpochRecords, "KV_MAC_EPOCH_RECORDS", EPOCH_RECORDS) ??
    DEFAULT_EPOCH_RECORDS;
  return await openMacState({ path, initialKey, recordsPerEpoch });
}

/**
 * Reads `--keyring` (env `KV_MAC_KEYRING`): the initial keys a rekeyed log names, each checked
 * against its key id. Needs the log's first initial key too (`--hmac-key-file`).
 *
 * @throws {KvhError} `flag_invalid` for a keyring without a key; `keyring_malformed` for a bad
 * line or a key whose id differs from its line's.
 */
export async function resolveKeyring(
  keyring: string | undefined,
  hmacKey: Uint8Array | undefined,
): Promise<Uint8Array[] | undefined> {
  const path = setting(keyring, "KV_MAC_KEYRING", textSetting);
  if (path === undefined) return undefined;
  if (hmacKey === undefined) {
    throw new KvhError(
      "flag_invalid",
      "Invalid --keyring without --hmac-key-file: the keyring adds keys to the log's initial key",
    );
  }
  const text = new TextDecoder().decode(await readSecretFile(path, "--keyring"));
  const keys: Uint8Array[] = [];
  for (const entry of parseKeyring(text, path)) {
    const key = entry.key ?? await readSecretFile(
      isAbsolute(entry.path!) ? entry.path! : join(dirname(path), entry.path!),
      "--keyring key",
    );
    checkKeyringKey(entry.keyId, key, path);
    keys.push(key);
  }
  return keys;
}
