/**
 * A small pool of Workers that run the per-line checks of verification in parallel: hashing and
 * canonical-form checks are independent per line; only the chain check is sequential and stays
 * with the caller, which consumes the results in order.
 *
 * @module
 */
import type { CheckRequest, CheckResponse } from "./_check_worker.ts";
import type { CheckLineOptions, LineResult } from "./_line_check.ts";

/** Runs {@linkcode checkLines} over runs of raw lines on `size` Workers, round robin. */
export class CheckPool {
  #workers: Worker[] = [];
  #pending = new Map<
    number,
    { resolve: (r: LineResult[]) => void; reject: (e: unknown) => void }
  >();
  #next = 0;
  #options: CheckLineOptions;

  /**
   * Starts the workers.
   *
   * @param size Number of workers.
   * @param options Key, v1 compatibility and line cap, sent with every run.
   */
  constructor(size: number, options: CheckLineOptions) {
    this.#options = options;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL("./_check_worker.ts", import.meta.url), { type: "module" });
      worker.onmessage = (event: MessageEvent<CheckResponse>) => {
        const waiter = this.#pending.get(event.data.id);
        this.#pending.delete(event.data.id);
        waiter?.resolve(unpack(event.data));
      };
      worker.onerror = (event) => {
        event.preventDefault();
        for (const waiter of this.#pending.values()) {
          waiter.reject(event.error ?? new Error(event.message));
        }
        this.#pending.clear();
      };
      this.#workers.push(worker);
    }
  }

  /**
   * Checks a run of complete lines; its buffer is transferred (unusable afterwards).
   *
   * @param bytes The lines, `\n` between them, alone in their buffer.
   * @returns One result per line, in order.
   */
  check(bytes: Uint8Array<ArrayBuffer>): Promise<LineResult[]> {
    const id = this.#next++;
    const worker = this.#workers[id % this.#workers.length]!;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const request: CheckRequest = { id, bytes, options: this.#options };
      worker.postMessage(request, [bytes.buffer]);
    });
  }

  /** Number of workers. */
  get size(): number {
    return this.#workers.length;
  }

  /** Stops the workers. */
  close(): void {
    for (const worker of this.#workers) worker.terminate();
    this.#workers = [];
  }
}

function unpack(response: CheckResponse): LineResult[] {
  const { kinds, seqs, hexes, others } = response;
  const results: LineResult[] = new Array(kinds.length);
  let at = 0;
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[i];
    const prev = hexes.slice(at, at + 64);
    const hash = hexes.slice(at + 64, at + 128);
    // Plain records are not rotate, recovery or prune, the only events the chain check reads.
    if (kind === 1 || kind === 2) {
      results[i] = { kind: "v2", seq: seqs[i]!, prev, hash, event: "", hasMac: kind === 2 };
    } else if (kind === 4 || kind === 5) {
      results[i] = {
        kind: "v1",
        prevHash: prev,
        currHash: hash,
        hasMac: kind === 5,
        eventType: undefined,
      };
    } else {
      continue;
    }
    at += 128;
  }
  for (const [index, result] of others) results[index] = result;
  return results;
}
