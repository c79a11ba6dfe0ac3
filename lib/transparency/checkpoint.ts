/**
 * C2SP tlog-checkpoint bodies: origin line, decimal tree size, base64 root hash, then optional
 * extension lines. kvh's origin is `kvh/<log id>`. No file access.
 *
 * @see {@link https://github.com/C2SP/C2SP/blob/main/tlog-checkpoint.md | C2SP tlog-checkpoint}
 * @module
 */
import { Buffer } from "node:buffer";
import { HASH_BYTES } from "./merkle.ts";
import {
  hasControl,
  NoteError,
  type NoteSigner,
  type NoteVerifier,
  openNote,
  signNote,
} from "./note.ts";

/** A checkpoint: a signed statement of a log's tree size and root. */
export interface Checkpoint {
  /** The log's origin, `kvh/<log id>`. */
  origin: string;
  /** Number of leaves (records) the root covers. */
  size: number;
  /** The Merkle tree root of the first `size` records. */
  root: Uint8Array;
}

/** Prefix of the origin of every kvh log. */
export const ORIGIN_PREFIX = "kvh/";

/**
 * The origin line of the log with this id.
 *
 * @param logId The random id recorded in the log's first record.
 * @returns `kvh/<log id>`.
 */
export function logOrigin(logId: string): string {
  return ORIGIN_PREFIX + logId;
}

/**
 * The checkpoint's note text.
 *
 * @param checkpoint Origin, size and root.
 * @returns Three lines, each ending in a newline.
 * @throws {TypeError} On a size, root or origin a checkpoint cannot carry.
 *
 * @example Usage
 * ```ts
 * import { formatCheckpoint, parseCheckpoint } from "./checkpoint.ts";
 * import { EMPTY_ROOT } from "./merkle.ts";
 * import assert from "node:assert/strict";
 *
 * const text = formatCheckpoint({ origin: "kvh/abc", size: 0, root: EMPTY_ROOT });
 * assert.equal(text.split("\n")[1], "0");
 * assert.equal(parseCheckpoint(text).origin, "kvh/abc");
 * ```
 */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, root } = checkpoint;
  if (origin === "" || hasControl(origin)) {
    throw new TypeError("Cannot format checkpoint: invalid origin");
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new TypeError(`Cannot format checkpoint: invalid size ${size}`);
  }
  if (root.length !== HASH_BYTES) {
    throw new TypeError("Cannot format checkpoint: root is not 32 bytes");
  }
  return `${origin}\n${size}\n${Buffer.from(root).toString("base64")}\n`;
}

/**
 * Parses a checkpoint's note text, exactly in the spec's form (extension lines are allowed and
 * ignored).
 *
 * @param text The note text.
 * @returns The checkpoint.
 * @throws {NoteError} `malformed` with the line that is wrong.
 */
export function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split("\n");
  if (lines.length < 4 || lines.at(-1) !== "") {
    throw new NoteError("malformed", "Malformed checkpoint: expected origin, size and root lines");
  }
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (origin === "") throw new NoteError("malformed", "Malformed checkpoint: empty origin line");
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw new NoteError("malformed", "Malformed checkpoint: line 2 is not a tree size");
  }
  const root = /^[A-Za-z0-9+/]{43}=$/.test(rootText) ? Buffer.from(rootText, "base64") : undefined;
  if (root === undefined || root.length !== HASH_BYTES) {
    throw new NoteError("malformed", "Malformed checkpoint: line 3 is not a base64 SHA-256 root");
  }
  return { origin, size: Number(sizeText), root: new Uint8Array(root) };
}

/**
 * Signs a checkpoint as a C2SP signed note.
 *
 * @param checkpoint Origin, size and root.
 * @param signer The log's key.
 * @returns The signed note.
 *
 * @example Usage
 * ```ts
 * import { openCheckpoint, signCheckpoint } from "./checkpoint.ts";
 * import { EMPTY_ROOT } from "./merkle.ts";
 * import { generateNoteKey, parseSignerKey, parseVerifierKey } from "./note.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = generateNoteKey("node-1");
 * const note = signCheckpoint(
 *   { origin: "kvh/abc", size: 0, root: EMPTY_ROOT },
 *   parseSignerKey(keys.signerKey),
 * );
 * assert.equal(openCheckpoint(note, parseVerifierKey(keys.verifierKey)).size, 0);
 * ```
 */
export function signCheckpoint(checkpoint: Checkpoint, signer: NoteSigner): string {
  return signNote(formatCheckpoint(checkpoint), signer);
}

/**
 * Opens a signed checkpoint: checks the signature, then parses the body.
 *
 * @param note The signed note.
 * @param verifier The log's public key.
 * @returns The checkpoint.
 * @throws {NoteError} `malformed` or `bad_signature`.
 */
export function openCheckpoint(note: string, verifier: NoteVerifier): Checkpoint {
  return parseCheckpoint(openNote(note, verifier));
}
