/**
 * Worker entry of the verifier: checks batches of lines with {@linkcode checkLine} and posts the
 * results back in order. Started by _check_pool.ts.
 *
 * @module
 */
import { checkLine, type CheckLineOptions, type LineResult } from "./_line_check.ts";

/** A batch to check. */
export interface CheckRequest {
  id: number;
  texts: (string | undefined)[];
  options: CheckLineOptions;
}

/**
 * The results of one batch, packed so that posting them costs little: plain records (no
 * failure, not rotate or prune) travel as a kind byte, a seq (v2) and 128 hex characters (prev
 * and hash) in one string; every other line travels as its {@linkcode LineResult}.
 */
export interface CheckResponse {
  id: number;
  /**
   * Per line: 0 no text, 1 plain v2 record, 2 the same with mac, 3 in `others`, 4 plain v1
   * record, 5 the same with hmac.
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

scope.onmessage = (event) => {
  const { id, texts, options } = event.data;
  const kinds = new Uint8Array(texts.length);
  const seqs = new Float64Array(texts.length);
  const hexes: string[] = [];
  const others: [number, LineResult][] = [];
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    if (text === undefined) continue;
    const result = checkLine(text, options);
    if (result.kind === "v2" && result.event !== "rotate" && result.event !== "prune") {
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
