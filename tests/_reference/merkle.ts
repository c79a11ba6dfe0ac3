/**
 * A slow, obviously correct RFC 6962 Merkle tree hash, written straight from RFC 9162 §2.1.1 to
 * cross-check lib/transparency in tests only.
 *
 * @module
 */
import { createHash } from "node:crypto";

function sha256(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

/** MTH(D[n]) over the given leaf inputs (not leaf hashes). */
export function referenceRoot(inputs: readonly Uint8Array[]): Uint8Array {
  const n = inputs.length;
  if (n === 0) return sha256();
  if (n === 1) return sha256(new Uint8Array([0]), inputs[0]!);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return sha256(
    new Uint8Array([1]),
    referenceRoot(inputs.slice(0, k)),
    referenceRoot(inputs.slice(k)),
  );
}
