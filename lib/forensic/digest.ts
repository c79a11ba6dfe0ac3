/**
 * The digests kvh uses, in one place: SHA-256 and HMAC-SHA256 as lowercase hex (both log formats,
 * evidence manifests, checkpoints), a constant-time string compare (MACs, bearer tokens) and a hex
 * encoder. Pure: no file access.
 *
 * @module
 */
import type { Hash } from "node:crypto";
import { loadedNativeDigests } from "./native_digest.ts";
import { nodeBuiltin } from "../io/node_builtin.ts";

let nodeCryptoModule: typeof import("node:crypto") | undefined;

/**
 * `node:crypto`, loaded on first use (see lib/io/node_builtin.ts): a trace that hashes through
 * libkvh_hash with no MAC key or checkpoint never loads it.
 *
 * @example Usage
 * ```ts
 * import { nodeCrypto } from "./digest.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(nodeCrypto().createHash("sha256").update("").digest("hex").length, 64);
 * ```
 *
 * @returns The `node:crypto` module.
 */
export function nodeCrypto(): typeof import("node:crypto") {
  return nodeCryptoModule ??= nodeBuiltin("node:crypto");
}

let emptySha256: Hash | undefined;

/**
 * Lowercase hex SHA-256 of `data` (a string is hashed as its UTF-8 bytes).
 *
 * @example Usage
 * ```ts
 * import { sha256Hex } from "./digest.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   sha256Hex("abc"),
 *   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 *
 * @param data The message.
 * @returns 64 lowercase hex digits.
 */
export function sha256Hex(data: string | Uint8Array): string {
  const native = loadedNativeDigests();
  if (native !== undefined && data.length <= NATIVE_MAX_UNITS) {
    // The writer seals every record through here: one native call, no hash object per call.
    let bytes: Uint8Array;
    let length: number;
    if (typeof data === "string") {
      length = encoder.encodeInto(data, scratch).written;
      bytes = scratch;
    } else {
      bytes = data;
      length = data.length;
    }
    native.sha256(bytes, length, digestOut);
    return digestOut.toHex();
  }
  // Copying a fresh hash object is measurably cheaper per call than createHash (one op less).
  emptySha256 ??= nodeCrypto().createHash("sha256");
  return emptySha256.copy().update(data).digest("hex");
}

/** Longest string (UTF-16 units) hashed natively; 3 bytes a unit fill the scratch at most. */
const NATIVE_MAX_UNITS = 64 * 1024;
const scratch = new Uint8Array(3 * NATIVE_MAX_UNITS);
const digestOut = new Uint8Array(32);
const encoder = new TextEncoder();

/** HMAC-SHA256 inner and outer states after the key block (RFC 2104), per key object. */
const HMAC_STATES = new WeakMap<Uint8Array, { inner: Hash; outer: Hash }>();

/**
 * The 64-byte HMAC-SHA256 key block of RFC 2104 §2: the key, hashed first when longer than a
 * block, zero-padded. XOR-ed with 0x36 it starts the inner hash, with 0x5c the outer one.
 */
function hmacKeyBlock(key: Uint8Array): Uint8Array {
  const block = new Uint8Array(64);
  block.set(key.length > 64 ? nodeCrypto().createHash("sha256").update(key).digest() : key);
  return block;
}

/**
 * Lowercase hex HMAC-SHA256 of `data` under `key`, equal to `node:crypto`'s
 * `createHmac("sha256", key).update(data).digest("hex")` but several times cheaper per call:
 * the keyed inner and outer states are computed once per key and copied per message.
 *
 * @example Usage
 * ```ts
 * import { hmacHex } from "./digest.ts";
 * import { createHmac } from "node:crypto";
 * import assert from "node:assert/strict";
 *
 * const key = new TextEncoder().encode("secret");
 * assert.equal(hmacHex(key, "record"), createHmac("sha256", key).update("record").digest("hex"));
 * ```
 *
 * @param key The key. Its states are memoised per `Uint8Array` object, so do not change its bytes
 * between calls.
 * @param data The message (a string is hashed as its UTF-8 bytes).
 * @returns 64 lowercase hex digits.
 */
export function hmacHex(key: Uint8Array, data: string | Uint8Array): string {
  let states = HMAC_STATES.get(key);
  if (states === undefined) {
    const block = hmacKeyBlock(key);
    states = {
      inner: nodeCrypto().createHash("sha256").update(block.map((b) => b ^ 0x36)),
      outer: nodeCrypto().createHash("sha256").update(block.map((b) => b ^ 0x5c)),
    };
    HMAC_STATES.set(key, states);
  }
  const innerDigest = states.inner.copy().update(data).digest();
  return states.outer.copy().update(innerDigest).digest("hex");
}

/**
 * Compares a presented string (a MAC, a bearer token) with the expected one in time that depends
 * only on the expected string's length: every character of `expected` is visited once,
 * `presented` is read modulo its own length, and differences (length included) are OR-ed, never
 * branched on. Hashing both sides and calling `node:crypto`'s `timingSafeEqual` gives the same
 * property but costs several microseconds per call.
 *
 * @example Usage
 * ```ts
 * import { constantTimeEqual } from "./digest.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(constantTimeEqual("abc", "abc"), true);
 * assert.equal(constantTimeEqual("abcabc", "abc"), false);
 * ```
 *
 * @param presented The untrusted string.
 * @param expected The string it must equal.
 * @returns Whether they are equal.
 */
export function constantTimeEqual(presented: string, expected: string): boolean {
  const n = presented.length;
  let diff = n ^ expected.length;
  // An empty `presented` reads NaN, which XORs as 0; the length difference already counts.
  for (let i = 0; i < expected.length; i++) {
    diff |= expected.charCodeAt(i) ^ presented.charCodeAt(i % n);
  }
  return diff === 0;
}

/**
 * Lowercase hex of `bytes`.
 *
 * @example Usage
 * ```ts
 * import { toHex } from "./digest.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(toHex(new Uint8Array([0, 15, 255])), "000fff");
 * ```
 *
 * @param bytes The bytes.
 * @returns Two lowercase hex digits per byte.
 */
export function toHex(bytes: Uint8Array): string {
  return bytes.toHex();
}
