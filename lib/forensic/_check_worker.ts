/**
 * Worker entry of the verifier: decodes and checks runs of raw lines with {@linkcode checkLines}
 * and posts compact results back. Started by _check_pool.ts.
 *
 * @module
 */
import { type CheckLineOptions, checkLines, type LineResult } from "./_line_check.ts";

/** A run of complete lines to check, `\n` between them (its buffer is transferred). */
export interface CheckRequest {
  id: number;
  bytes: Uint8Array;
  options: CheckLineOptions;
}

/**
 * The results of one batch, packed so that posting them costs little: plain records (no
 * failure, not rotate, recovery or prune, no epoch) travel as a kind byte, a seq (v2) and 128 hex characters (prev
 * and hash) in one string; every other line travels as its {@linkcode LineResult}.
 */
export interface CheckResponse {
  id: number;
  /**
   * Per line: 1 plain v2 record, 2 the same with mac, 3 in `others`, 4 plain v1 record, 5 the
   * same with hmac.
   */
  kinds: Uint8Array;
  seqs: Float64Array;
  /** prev + hash of each plain record, in order. */
  hexes: string;
  others: [number, LineResult][];
}

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<CheckRequest>) => void) | null;
  postMessage(message: CheckResponse, transfer: Transferable[]): void;
};

/** v2 events whose fields the chain check reads: they travel whole. */
const CHAIN_EVENTS: ReadonlySet<string> = new Set(["rotate", "recovery", "prune"]);

scope.onmessage = (event) => {
  const { id, bytes, options } = event.data;
  const results = checkLines(bytes, options);
  const kinds = new Uint8Array(results.length);
  const seqs = new Float64Array(results.length);
  const hexes: string[] = [];
  const others: [number, LineResult][] = [];
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    if (result.kind === "v2" && !CHAIN_EVENTS.has(result.event) && result.epoch === undefined) {
      kinds[i] = result.hasMac ? 2 : 1;
      seqs[i] = result.seq;
      hexes.push(result.prev, result.hash);
    } else if (
      result.kind === "v1" && result.eventType !== "rotate" && result.eventType !== "prune" &&
      result.prevHash?.length === 64 && result.currHash.length === 64
    ) {
      kinds[i] = result.hasMac ? 5 : 4;
      hexes.push(result.prevHash, result.currHash);
    } else {
      kinds[i] = 3;
      others.push([i, result]);
    }
  }
  scope.postMessage({ id, kinds, seqs, hexes: hexes.join(""), others }, [
    kinds.buffer,
    seqs.buffer,
  ]);
};
