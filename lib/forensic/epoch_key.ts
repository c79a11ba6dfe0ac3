/**
 * Forward-secure MACs (opt-in): the MAC key evolves per epoch, key_{e+1} = HMAC-SHA256(key_e,
 * "kvh-epoch" ‖ e as 8-byte big-endian), and the writer keeps only the current key, in a state
 * file rewritten at each epoch. A thief of the host's current key cannot MAC records of earlier
 * epochs; the initial key, held offline, derives every epoch key for verification. Records carry
 * `epoch` and `key_id` (the id of the initial key their epoch key descends from); a `rekey`
 * record, MACed with the old key, names the next initial key's id.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import { writeFileAtomic } from "../io/durable_files.ts";
import { constantTimeEqual, hmacHex, nodeCrypto } from "./digest.ts";
import { splitV2Line } from "./format_v2.ts";

const LABEL = new TextEncoder().encode("kvh-epoch");

/**
 * The key of the epoch after `epoch`: HMAC-SHA256(key, "kvh-epoch" ‖ epoch as 8-byte big-endian).
 *
 * @example Usage
 * ```ts
 * import { nextEpochKey } from "./epoch_key.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(nextEpochKey(new Uint8Array(32), 0).length, 32);
 * ```
 *
 * @param key The key of epoch `epoch`.
 * @param epoch Its epoch.
 * @returns The key of epoch `epoch + 1` (a new buffer).
 */
export function nextEpochKey(key: Uint8Array, epoch: number): Uint8Array {
  const message = new Uint8Array(LABEL.length + 8);
  message.set(LABEL);
  new DataView(message.buffer).setBigUint64(LABEL.length, BigInt(epoch));
  return new Uint8Array(nodeCrypto().createHmac("sha256", key).update(message).digest());
}

/**
 * The id records and keyrings name an initial key by: 16 hex digits of SHA-256("kvh-key-id" ‖
 * key). It says which key, never the key.
 *
 * @param initialKey The initial (offline) key.
 * @returns 16 lowercase hex digits.
 */
export function macKeyId(initialKey: Uint8Array): string {
  return nodeCrypto().createHash("sha256").update("kvh-key-id").update(initialKey).digest("hex")
    .slice(0, 16);
}

/** Epoch keys kept per key id while deriving: one every this many epochs. */
const KEPT_EVERY = 1024;
/**
 * Most derivation steps one lookup takes: a record claiming an absurd epoch (2^50) must not
 * make verification hash for days. At one step per record a log this far ahead would have
 * 16 million records in one epoch run; such an epoch is reported as `epoch_gap`.
 */
export const MAX_EPOCH_STEPS = 1 << 24;

interface Derived {
  kept: Uint8Array[];
  lastEpoch: number;
  last: Uint8Array;
}

/** Key ids of roots seen, so a lookup per record does not hash the root again. */
const ROOT_IDS = new WeakMap<Uint8Array, string>();
/** Derivations per key id (the id is a hash of the root, so one id is one root). */
const DERIVED = new Map<string, Derived>();

/**
 * The key of `epoch` descending from `root`; derivations are memoised, so a verifier walking
 * the epochs in order hashes once per epoch.
 *
 * @param root The initial key.
 * @param epoch The epoch.
 * @returns The epoch key, or undefined when it is more than {@linkcode MAX_EPOCH_STEPS} steps
 * beyond what was derived.
 */
export function epochKeyFor(root: Uint8Array, epoch: number): Uint8Array | undefined {
  let id = ROOT_IDS.get(root);
  if (id === undefined) {
    id = macKeyId(root);
    ROOT_IDS.set(root, id);
  }
  let derived = DERIVED.get(id);
  if (derived === undefined) {
    derived = { kept: [root], lastEpoch: 0, last: root };
    DERIVED.set(id, derived);
  }
  let at = derived.lastEpoch;
  let key = derived.last;
  if (epoch < at || epoch - at > MAX_EPOCH_STEPS) {
    const index = Math.min(Math.floor(epoch / KEPT_EVERY), derived.kept.length - 1);
    at = index * KEPT_EVERY;
    key = derived.kept[index]!;
  }
  if (epoch - at > MAX_EPOCH_STEPS) return undefined;
  for (; at < epoch; at++) {
    key = nextEpochKey(key, at);
    if ((at + 1) % KEPT_EVERY === 0 && derived.kept.length === (at + 1) / KEPT_EVERY) {
      derived.kept.push(key);
    }
  }
  derived.lastEpoch = epoch;
  derived.last = key;
  return key;
}

/** The forward-secure fields of a record line. */
export interface EpochFields {
  epoch: number;
  keyId: string;
  /** A `rekey` record's `new_key_id`. */
  newKeyId?: string;
}

/**
 * Reads `epoch`, `key_id` (and a rekey's `new_key_id`) of a v2 line; undefined when it has no
 * `epoch`, a string saying what is wrong when they are malformed.
 */
export function readEpochFields(line: string): EpochFields | string | undefined {
  // Only lines that mention the member are parsed: the others are not forward-secure.
  if (!line.includes('"epoch":')) return undefined;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line);
  } catch {
    return undefined; // The line check reports the malformed line itself.
  }
  if (typeof record !== "object" || record === null || !Object.hasOwn(record, "epoch")) {
    return undefined;
  }
  const { epoch, key_id: keyId, event, new_key_id: newKeyId, seq } = record;
  if (typeof epoch !== "number" || !Number.isSafeInteger(epoch) || epoch < 0) {
    return `Field epoch at seq ${seq} is not a non-negative integer`;
  }
  if (typeof keyId !== "string" || !KEY_ID_RE.test(keyId)) {
    return `Field key_id at seq ${seq} is not a 16-digit hex key id`;
  }
  if (event === "rekey") {
    if (typeof newKeyId !== "string" || !KEY_ID_RE.test(newKeyId)) {
      return `Field new_key_id of the rekey record at seq ${seq} is not a 16-digit hex key id`;
    }
    return { epoch, keyId, newKeyId };
  }
  return { epoch, keyId };
}

const KEY_ID_RE = /^[0-9a-f]{16}$/;

/**
 * Parses a keyring file: one key per line, `<key id> <path>` (a file holding the key, as
 * `--hmac-key-file`; relative to the keyring's folder) or `<key id> base64:<key>`; blank lines
 * and lines starting with `#` are skipped.
 *
 * @param text The file's text.
 * @param source The file's name, for messages.
 * @returns The entries, in order.
 * @throws {KvhError} `keyring_malformed` (exit 1) on a line of another form.
 */
export function parseKeyring(
  text: string,
  source: string,
): { keyId: string; path?: string; key?: Uint8Array }[] {
  const entries: { keyId: string; path?: string; key?: Uint8Array }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([0-9a-f]{16})\s+(\S+)$/.exec(line);
    if (match === null) {
      throw new KvhError(
        "keyring_malformed",
        `Invalid keyring ${source} line ${i + 1}: expected <16-hex key id> <path or base64:key>`,
      );
    }
    const [, keyId, value] = match as unknown as [string, string, string];
    if (value.startsWith("base64:")) {
      let key: Uint8Array;
      try {
        key = Uint8Array.fromBase64(value.slice(7));
      } catch {
        throw new KvhError(
          "keyring_malformed",
          `Invalid keyring ${source} line ${i + 1}: the key after base64: is not base64`,
        );
      }
      if (key.length === 0) {
        throw new KvhError(
          "keyring_malformed",
          `Invalid keyring ${source} line ${i + 1}: the base64 key is empty`,
        );
      }
      entries.push({ keyId, key });
    } else {
      entries.push({ keyId, path: value });
    }
  }
  return entries;
}

/**
 * Checks that a keyring key has the id its line gives.
 *
 * @throws {KvhError} `keyring_malformed` (exit 1) when it does not.
 */
export function checkKeyringKey(keyId: string, key: Uint8Array, source: string): void {
  if (macKeyId(key) !== keyId) {
    throw new KvhError(
      "keyring_malformed",
      `Invalid keyring ${source}: the key given for ${keyId} has id ${macKeyId(key)}`,
    );
  }
}

/** What the state file holds: where the writer's key stands. */
interface MacState {
  keyId: string;
  epoch: number;
  key: Uint8Array;
}

/** Options of {@linkcode openMacState}. */
export interface MacStateOptions {
  /** The state file (`--mac-state-file`). */
  path: string;
  /**
   * The initial key (`--hmac-key-file`): starts a forward-secure log when the state file does
   * not exist, and rekeys one whose key id differs.
   */
  initialKey?: Uint8Array;
  /** Records per epoch before the key evolves (it also evolves at each rotation). */
  recordsPerEpoch: number;
}

/**
 * Opens the state file of a forward-secure log, or prepares a new one from the initial key
 * (written once the log is opened and found consistent with it).
 *
 * @throws {KvhError} `mac_state_missing` (exit 1) when the file does not exist and no initial
 * key is given; `mac_state_invalid` (exit 1) when it is not a state file or not 0600.
 */
export async function openMacState(options: MacStateOptions): Promise<EpochMacKeys> {
  const { path, initialKey, recordsPerEpoch } = options;
  if (!Number.isSafeInteger(recordsPerEpoch) || recordsPerEpoch < 1) {
    throw new RangeError(`Cannot open ${path}: recordsPerEpoch must be a positive integer`);
  }
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw stateError(path, error);
  }
  if (info === undefined) {
    if (initialKey === undefined) {
      throw new KvhError(
        "mac_state_missing",
        `Cannot open --mac-state-file ${path}: it does not exist and no --hmac-key-file starts a forward-secure log`,
      );
    }
    const state = { keyId: macKeyId(initialKey), epoch: 0, key: initialKey.slice() };
    return new EpochMacKeys({ path, state, recordsPerEpoch, fresh: true });
  }
  if (!info.isFile || (info.mode !== null && (info.mode & 0o077) !== 0)) {
    throw new KvhError(
      "mac_state_invalid",
      `Refusing --mac-state-file ${path}: ${
        info.isFile ? "others can read it (chmod 600)" : "not a regular file"
      }`,
    );
  }
  let state: MacState;
  try {
    const parsed = JSON.parse(await Deno.readTextFile(path));
    const key = Uint8Array.fromBase64(String(parsed.key));
    if (
      parsed.v !== 1 || typeof parsed.key_id !== "string" || !KEY_ID_RE.test(parsed.key_id) ||
      !Number.isSafeInteger(parsed.epoch) || parsed.epoch < 0 || key.length !== 32
    ) {
      throw new Error("Not a kvh MAC state file");
    }
    state = { keyId: parsed.key_id, epoch: parsed.epoch, key };
  } catch (error) {
    throw stateError(path, error);
  }
  const keys = new EpochMacKeys({ path, state, recordsPerEpoch, fresh: false });
  if (initialKey !== undefined && macKeyId(initialKey) !== state.keyId) {
    keys.rekeyTo = initialKey.slice();
  }
  return keys;
}

function stateError(path: string, error: unknown): KvhError {
  return new KvhError(
    "mac_state_invalid",
    `Cannot read --mac-state-file ${path}: ${(error as Error).message}`,
    { cause: error },
  );
}

/**
 * The writer's side of forward-secure MACs: the current epoch, its key and the state file. Give
 * it to {@linkcode openForensicLog} as `macKeys`; the writer stays ignorant of files.
 */
export class EpochMacKeys {
  #path: string;
  #state: MacState;
  #recordsPerEpoch: number;
  #fresh: boolean;
  /** Records sealed in the current epoch. */
  #count = 0;
  #written: Promise<void> = Promise.resolve();
  #failure: unknown;
  /** A new initial key to rekey to once the log is open (see {@linkcode rekeyLog}). */
  rekeyTo: Uint8Array | undefined;

  /** Use {@linkcode openMacState}. */
  constructor(
    init: { path: string; state: MacState; recordsPerEpoch: number; fresh: boolean },
  ) {
    this.#path = init.path;
    this.#state = init.state;
    this.#recordsPerEpoch = init.recordsPerEpoch;
    this.#fresh = init.fresh;
  }

  /** Current epoch. */
  get epoch(): number {
    return this.#state.epoch;
  }

  /**
   * Checks the log's last record against the state and takes the epoch from there; writes the
   * state file of a new forward-secure log.
   *
   * @param lastLine The log's last record (its line without `\n`), undefined for an empty log.
   * @throws {KvhError} `mac_state_mismatch` (exit 1) when the state file does not belong to
   * this log or is missing for a forward-secure one; `log_corrupt` (exit 2) when the last
   * record's MAC does not match the state's key.
   */
  resume(lastLine: string | undefined): void {
    const fields = lastLine === undefined ? undefined : readEpochFields(lastLine);
    const state = this.#state;
    if (typeof fields === "string") throw this.#mismatch(fields);
    if (fields === undefined) {
      if (state.epoch !== 0) {
        throw this.#mismatch(
          `it is at epoch ${state.epoch} while the log has no forward-secure record`,
        );
      }
    } else {
      if (this.#fresh) {
        throw this.#mismatch(
          "it does not exist while the log's records carry epochs: the current key is lost " +
            "(the log still verifies with its initial key; start a new log)",
        );
      }
      if (fields.keyId !== state.keyId) {
        throw this.#mismatch(`it holds key ${state.keyId}, the log's last record ${fields.keyId}`);
      }
      if (state.epoch > fields.epoch + 1) {
        throw this.#mismatch(
          `it is at epoch ${state.epoch}, ahead of the log's last epoch ${fields.epoch}`,
        );
      }
      if (state.epoch <= fields.epoch) {
        // The state may lag the log by an epoch (a crash before its rewrite): derive forward.
        while (this.#state.epoch < fields.epoch) this.#advance();
        const split = splitV2Line(lastLine!);
        if (
          split?.mac === undefined ||
          !constantTimeEqual(split.mac, hmacHex(this.#state.key, split.body))
        ) {
          throw new KvhError(
            "log_corrupt",
            `Cannot continue the log with --mac-state-file ${this.#path}: its last record's MAC does not match the state's key: run kvh verify`,
            { exitCode: 2 },
          );
        }
        this.#count = 1;
      }
    }
    if (this.#fresh) this.#persist();
  }

  /**
   * Before a record is sealed: moves to the next epoch when the current one is full or the
   * record starts a new file. Repeating it before the same record changes nothing.
   */
  prepare(rotating: boolean): void {
    if (this.#count > 0 && (rotating || this.#count >= this.#recordsPerEpoch)) this.#advance();
  }

  /** Epoch, key id and key for the record being sealed. */
  current(): { epoch: number; keyId: string; key: Uint8Array } {
    return { ...this.#state };
  }

  /** A record sealed with {@linkcode current} was queued. */
  recorded(): void {
    this.#count++;
  }

  /**
   * Starts the next epoch under a new initial key (after the `rekey` record naming it).
   *
   * @param initialKey The new initial key.
   */
  rekey(initialKey: Uint8Array): void {
    const epoch = this.#state.epoch + 1;
    let key: Uint8Array = initialKey.slice();
    for (let at = 0; at < epoch; at++) {
      const next = nextEpochKey(key, at);
      key.fill(0);
      key = next;
    }
    this.#replace({ keyId: macKeyId(initialKey), epoch, key });
  }

  /** Resolves once every state change is durable; rejects when one could not be written. */
  async settle(): Promise<void> {
    await this.#written;
    if (this.#failure !== undefined) throw this.#failure;
  }

  #advance(): void {
    const { keyId, epoch, key } = this.#state;
    this.#replace({ keyId, epoch: epoch + 1, key: nextEpochKey(key, epoch) });
  }

  #replace(state: MacState): void {
    // The old key is overwritten in memory; the file holding it is replaced.
    this.#state.key.fill(0);
    this.#state = state;
    this.#count = 0;
    this.#persist();
  }

  #persist(): void {
    const { keyId, epoch, key } = this.#state;
    const text = JSON.stringify({
      v: 1,
      key_id: keyId,
      epoch,
      key: key.toBase64(),
    }) + "\n";
    this.#written = this.#written.then(() => writeFileAtomic(this.#path, text)).catch((error) => {
      this.#failure ??= new KvhError(
        "audit_emit_failed",
        `Cannot write --mac-state-file ${this.#path}: ${(error as Error).message}`,
        { cause: error },
      );
    });
  }

  #mismatch(why: string): KvhError {
    return new KvhError(
      "mac_state_mismatch",
      `Refusing --mac-state-file ${this.#path}: ${why}`,
    );
  }
}

/**
 * Rekeys an open forward-secure log when its state names another initial key than the one
 * given: appends a `rekey` record (MACed with the old key) naming the new key's id, then moves
 * to the next epoch under the new key.
 *
 * @param log The open log, written with `keys`.
 * @param keys Its keys.
 * @returns The new key id, or undefined when no rekey was due.
 */
export async function rekeyLog(
  log: {
    append(
      event: string,
      fields: Record<string, unknown>,
      options?: { critical?: boolean },
    ): Promise<unknown>;
  },
  keys: EpochMacKeys,
): Promise<string | undefined> {
  const next = keys.rekeyTo;
  if (next === undefined) return undefined;
  const newKeyId = macKeyId(next);
  const appended = log.append("rekey", { new_key_id: newKeyId }, { critical: true });
  // Sealed synchronously with the old key: the next record is the new key's.
  keys.rekey(next);
  next.fill(0);
  keys.rekeyTo = undefined;
  await appended;
  return newKeyId;
}
