/**
 * C2SP signed notes with Ed25519: key generation, the text encodings of signer and verifier
 * keys used by the transparency-log tools, signing and opening notes. No file access.
 *
 * A note is UTF-8 text ending in a newline, a blank line, then one line per signature:
 * `— <key name> <base64(4-byte key ID ‖ 64-byte signature)>`. The key ID is the first four
 * bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key), 0x01 naming Ed25519.
 *
 * @see {@link https://github.com/C2SP/C2SP/blob/main/signed-note.md | C2SP signed-note}
 * @module
 */
import { Buffer } from "node:buffer";
import type { KeyObject } from "node:crypto";
import { nodeCrypto } from "../forensic/digest.ts";
import { KvhError } from "../errors.ts";

/** Signature type byte of Ed25519 in key encodings and key IDs. */
const ED25519 = 0x01;
/** DER prefixes that wrap a raw Ed25519 seed (PKCS #8) and public key (SPKI), RFC 8410. */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
/** The em dash and space that start a signature line. */
const SIGNATURE_PREFIX = "\u2014 ";
/** Go's note.Open stops at this many signature lines; so does kvh. */
const MAX_SIGNATURES = 100;

/** A key that signs notes. Holds the private key: never log it. */
export interface NoteSigner {
  /** Key name. */
  readonly name: string;
  /** Key ID as 8 lowercase hex digits. */
  readonly keyId: string;
  /** The matching verifier key, in its text encoding. */
  readonly verifierKey: string;
  /** The private key (opaque). */
  readonly privateKey: KeyObject;
}

/** A key that verifies notes. */
export interface NoteVerifier {
  /** Key name. */
  readonly name: string;
  /** Key ID as 8 lowercase hex digits. */
  readonly keyId: string;
  /** The public key (opaque). */
  readonly publicKey: KeyObject;
}

/** Why a note did not open. */
export type NoteFailure = "malformed" | "bad_signature";

/** A note that could not be parsed, or whose signature by the given key is missing or wrong. */
export class NoteError extends KvhError {
  /** `malformed` or `bad_signature`. */
  readonly reason: NoteFailure;

  /**
   * Creates the error (exit code 2: the note is evidence that failed its check).
   *
   * @param reason Why.
   * @param message One line.
   */
  constructor(reason: NoteFailure, message: string) {
    super(`note_${reason}`, message, { exitCode: 2 });
    this.name = "NoteError";
    this.reason = reason;
  }
}

/**
 * Generates an Ed25519 key pair named `name`.
 *
 * @param name Key name: non-empty, no whitespace, no `+`.
 * @returns The signer key (`PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>`) and verifier key
 * (`<name>+<id>+<base64(0x01 ‖ public key)>`) as text.
 * @throws {TypeError} On an invalid name.
 *
 * @example Usage
 * ```ts
 * import { generateNoteKey, openNote, parseSignerKey, parseVerifierKey, signNote } from "./note.ts";
 * import assert from "node:assert/strict";
 *
 * const { signerKey, verifierKey } = generateNoteKey("kvh-node-1");
 * const note = signNote("hello\n", parseSignerKey(signerKey));
 * assert.equal(openNote(note, parseVerifierKey(verifierKey)), "hello\n");
 * ```
 */
export function generateNoteKey(name: string): { signerKey: string; verifierKey: string } {
  checkName(name);
  const { privateKey } = nodeCrypto().generateKeyPairSync("ed25519");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  const seed = new Uint8Array(der.subarray(PKCS8_PREFIX.length));
  const publicKey = rawPublicKey(privateKey);
  const id = keyId(name, publicKey);
  return {
    signerKey: `PRIVATE+KEY+${name}+${id}+${encodeKey(seed)}`,
    verifierKey: `${name}+${id}+${encodeKey(publicKey)}`,
  };
}

/**
 * Parses a signer key in its text encoding; checks its key ID against its seed.
 *
 * @param text `PRIVATE+KEY+<name>+<8 hex key ID>+<base64(0x01 ‖ 32-byte seed)>`, one trailing
 * newline allowed.
 * @returns The signer.
 * @throws {KvhError} `key_malformed` (exit 1) when it is not a valid Ed25519 signer key. The
 * message never contains the key.
 */
export function parseSignerKey(text: string): NoteSigner {
  const parts = splitKey(text.replace(/\n$/, ""), 5);
  if (parts === undefined || parts[0] !== "PRIVATE" || parts[1] !== "KEY") {
    throw malformedKey("signer", "expected PRIVATE+KEY+<name>+<key ID>+<key>");
  }
  const [, , name, id, encoded] = parts as [string, string, string, string, string];
  const seed = decodeKey(encoded, "signer");
  validName(name, "signer");
  let privateKey: KeyObject;
  try {
    privateKey = nodeCrypto().createPrivateKey({
      key: Buffer.concat([PKCS8_PREFIX, seed]),
      format: "der",
      type: "pkcs8",
    });
  } catch {
    throw malformedKey("signer", "the key is not an Ed25519 seed");
  }
  const publicKey = rawPublicKey(privateKey);
  if (keyId(name, publicKey) !== id) {
    throw malformedKey("signer", "its key ID does not match the key");
  }
  return { name, keyId: id, verifierKey: `${name}+${id}+${encodeKey(publicKey)}`, privateKey };
}

/**
 * Parses a verifier key in its text encoding; checks its key ID against its public key.
 *
 * @param text `<name>+<8 hex key ID>+<base64(0x01 ‖ 32-byte public key)>`, one trailing
 * newline allowed.
 * @returns The verifier.
 * @throws {KvhError} `key_malformed` (exit 1) when it is not a valid Ed25519 verifier key.
 *
 * @example Usage
 * ```ts
 * import { parseVerifierKey } from "./note.ts";
 * import assert from "node:assert/strict";
 *
 * const verifier = parseVerifierKey(
 *   "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
 * );
 * assert.equal(verifier.keyId, "530d903a");
 * ```
 */
export function parseVerifierKey(text: string): NoteVerifier {
  const parts = splitKey(text.replace(/\n$/, ""), 3);
  if (parts === undefined) throw malformedKey("verifier", "expected <name>+<key ID>+<key>");
  const [name, id, encoded] = parts as [string, string, string];
  validName(name, "verifier");
  const raw = decodeKey(encoded, "verifier");
  if (keyId(name, raw) !== id) throw malformedKey("verifier", "its key ID does not match the key");
  let publicKey: KeyObject;
  try {
    publicKey = nodeCrypto().createPublicKey({
      key: Buffer.concat([SPKI_PREFIX, raw]),
      format: "der",
      type: "spki",
    });
  } catch {
    throw malformedKey("verifier", "the key is not an Ed25519 public key");
  }
  return { name, keyId: id, publicKey };
}

/**
 * Signs a note's text.
 *
 * @param text UTF-8 text ending in one newline, without blank lines.
 * @param signer The key.
 * @returns The signed note: text, blank line, signature line.
 * @throws {TypeError} When the text cannot be a note's text.
 */
export function signNote(text: string, signer: NoteSigner): string {
  if (!isNoteText(text)) {
    throw new TypeError("Cannot sign note: text must end in a newline and hold no blank line");
  }
  const signature = nodeCrypto().sign(null, Buffer.from(text, "utf8"), signer.privateKey);
  const blob = Buffer.concat([Buffer.from(signer.keyId, "hex"), signature]).toString("base64");
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${blob}\n`;
}

/**
 * Opens a signed note: parses it and checks the signature of `verifier`. Lines signed by other
 * keys are ignored, as the spec says; a line by this key that does not verify, or no line by
 * it, rejects the note.
 *
 * @param note The signed note.
 * @param verifier The key that must have signed it.
 * @returns The note's text.
 * @throws {NoteError} `malformed` or `bad_signature`.
 */
export function openNote(note: string, verifier: NoteVerifier): string {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) {
    throw new NoteError("malformed", "Malformed note: no blank line before the signatures");
  }
  const text = note.slice(0, split + 1);
  if (!isNoteText(text)) throw new NoteError("malformed", "Malformed note: invalid text");
  const lines = note.slice(split + 2, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) {
    throw new NoteError("malformed", `Malformed note: more than ${MAX_SIGNATURES} signatures`);
  }
  let found = false;
  for (const line of lines) {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (match === null) throw new NoteError("malformed", "Malformed note: bad signature line");
    const blob = Buffer.from(match[2]!, "base64");
    if (blob.length < 5) throw new NoteError("malformed", "Malformed note: short signature");
    if (match[1] !== verifier.name || blob.subarray(0, 4).toString("hex") !== verifier.keyId) {
      continue;
    }
    found = true;
    if (
      !nodeCrypto().verify(null, Buffer.from(text, "utf8"), verifier.publicKey, blob.subarray(4))
    ) {
      throw new NoteError(
        "bad_signature",
        `Bad signature: the note does not verify with key ${verifier.name}+${verifier.keyId}`,
      );
    }
  }
  if (!found) {
    throw new NoteError(
      "bad_signature",
      `Bad signature: the note carries no signature by key ${verifier.name}+${verifier.keyId}`,
    );
  }
  return text;
}

function isNoteText(text: string): boolean {
  // Control characters other than newline could hide text from a reader of the note.
  return text.endsWith("\n") && !text.includes("\n\n") && !hasControl(text.replaceAll("\n", ""));
}

/** Whether `text` holds an ASCII control character. */
export function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * Splits a key's text at its first `count - 1` plus signs: the last field is base64, which may
 * hold `+` itself.
 */
function splitKey(text: string, count: number): string[] | undefined {
  const parts: string[] = [];
  let rest = text;
  for (let i = 1; i < count; i++) {
    const at = rest.indexOf("+");
    if (at < 0) return undefined;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
}

function keyId(name: string, publicKey: Uint8Array): string {
  return nodeCrypto().createHash("sha256").update(name, "utf8").update(
    new Uint8Array([0x0a, ED25519]),
  )
    .update(publicKey).digest().subarray(0, 4).toString("hex");
}

function rawPublicKey(privateKey: KeyObject): Uint8Array {
  const der = nodeCrypto().createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return new Uint8Array(der.subarray(SPKI_PREFIX.length));
}

function encodeKey(raw: Uint8Array): string {
  return Buffer.concat([new Uint8Array([ED25519]), raw]).toString("base64");
}

function decodeKey(encoded: string, kind: string): Uint8Array {
  const raw = /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) ? Buffer.from(encoded, "base64") : undefined;
  if (raw === undefined || raw.length !== 33 || raw[0] !== ED25519) {
    throw malformedKey(kind, "expected base64 of 0x01 and 32 key bytes (Ed25519)");
  }
  return new Uint8Array(raw.subarray(1));
}

function checkName(name: string): void {
  if (!isValidName(name)) {
    throw new TypeError(
      `Invalid key name ${JSON.stringify(name)}: it must be non-empty, without spaces or +`,
    );
  }
}

function validName(name: string, kind: string): void {
  if (!isValidName(name)) throw malformedKey(kind, "invalid key name");
}

function isValidName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !hasControl(name);
}

function malformedKey(kind: string, why: string): KvhError {
  return new KvhError("key_malformed", `Invalid ${kind} key: ${why}`);
}
