/**
 * `kvh keygen`'s work: an Ed25519 checkpoint key pair written as `DIR/NAME.key` (the signer key,
 * 0600, never overwritten) and `DIR/NAME.pub` (the verifier key).
 *
 * @module
 */
import { join } from "../io/path.ts";
import { describeIoError, KvhError } from "../errors.ts";
import { syncDir, writeNewFile } from "../io/mod.ts";
import { generateNoteKey } from "./note.ts";

/** What {@linkcode writeKeyPair} wrote. */
export interface KeyPairFiles {
  /** Path of the signer key file. */
  keyFile: string;
  /** Path of the verifier key file. */
  pubFile: string;
  /** The verifier key (public), in its text encoding. */
  verifierKey: string;
}

/** Key names double as file names: the identifier rules of the tracer, no leading dot. */
const KEY_NAME_RE = /^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,255}$/;

/**
 * Generates a key pair named `name` and writes it into `dir` (created 0700 when missing).
 * Refuses to replace either file: a signing key lost to an overwrite cannot be recovered, and
 * checkpoints signed with it could no longer be told from forgeries.
 *
 * @param dir Directory for the key files.
 * @param name Key name, also the files' base name.
 * @returns The paths written and the verifier key.
 * @throws {KvhError} `key_name_invalid`, `key_exists`, `key_unwritable` (all exit 1).
 *
 * @example Usage
 * ```ts
 * import { writeKeyPair } from "./write_key_pair.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const files = await writeKeyPair(`${dir}/keys`, "node-1");
 * assert.ok(files.verifierKey.startsWith("node-1+"));
 * assert.equal((await Deno.stat(files.keyFile)).mode! & 0o777, 0o600);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeKeyPair(dir: string, name: string): Promise<KeyPairFiles> {
  if (!KEY_NAME_RE.test(name) || name.includes("..")) {
    throw new KvhError(
      "key_name_invalid",
      `Invalid key name ${
        JSON.stringify(name)
      }: use 1 to 256 of A-Z a-z 0-9 . _ : @ - (no leading dot, no ..)`,
    );
  }
  const keyFile = join(dir, `${name}.key`);
  const pubFile = join(dir, `${name}.pub`);
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new KvhError("key_unwritable", `Cannot create ${dir}: ${describeIoError(error)}`, {
      cause: error,
    });
  }
  const { signerKey, verifierKey } = generateNoteKey(name);
  await writeNew(keyFile, signerKey + "\n");
  try {
    await writeNew(pubFile, verifierKey + "\n");
  } catch (error) {
    // The key was created just now and its public half could not be written: keeping it would
    // leave a key nobody can verify, and block the next keygen.
    await Deno.remove(keyFile).catch(() => {});
    throw error;
  }
  await syncDir(dir);
  return { keyFile, pubFile, verifierKey };
}

async function writeNew(path: string, text: string): Promise<void> {
  try {
    // Exclusive create: never follows or replaces anything that appeared since the check.
    await writeNewFile(path, text);
  } catch (error) {
    const code = error instanceof Deno.errors.AlreadyExists ? "key_exists" : "key_unwritable";
    const message = code === "key_exists"
      ? `Refusing to overwrite ${path}: it already exists`
      : `Cannot write ${path}: ${describeIoError(error)}`;
    throw new KvhError(code, message, { cause: error });
  }
}
