/**
 * Replays requests through a {@linkcode CacheTracer} as a serving engine would: take a buffer
 * (a scrubbed one of the same size from the pool, handed on through the tracer, or a new one),
 * write the tenant's KV bytes, scrub, free it back to the pool.
 *
 * @module
 */
import type { CacheTracer } from "../tracer/cache_tracer.ts";
import { CoverageBelowThresholdError, PolicyViolationError } from "../tracer/errors.ts";
import type { Sanitizer } from "../sanitize/types.ts";
import { kvShape } from "./kv_shape.ts";
import type { WorkloadRequest } from "./types.ts";
import { kvBytes } from "./kv_shape.ts";

const encoder = new TextEncoder();

/** Options of {@linkcode runWorkload}. */
export interface RunWorkloadOptions {
  /**
   * Requests in flight at once (buffers held at once).
   *
   * @default {8}
   */
  concurrency?: number;
  /** Called after each request with the number done so far. */
  onProgress?: (done: number) => void;
  /**
   * Stops taking new requests once aborted, even while a read of `requests` is pending;
   * requests in flight finish.
   */
  signal?: AbortSignal;
}

/** What happened to the requests. */
export interface WorkloadSummary {
  /** Requests read. */
  requests: number;
  /** Requests whose buffer was scrubbed and freed. */
  completed: number;
  /** Requests that ended in a quarantine (TTL, coverage, leak …). */
  failed: number;
  /** Buffers a policy quarantined, pooled buffers refused at hand-off included. */
  quarantined: number;
  /** Requests served by a buffer handed on from the pool. */
  reused: number;
  /** KV bytes the requests held. */
  kvBytes: number;
  /** Wall time of the run in milliseconds. */
  elapsedMs: number;
}

/**
 * The bytes a tenant's request writes into its buffer: derived from the identifiers, never
 * zero, so a missed scrub shows up as non-zero bytes at the next hand-off.
 *
 * @param request The request.
 * @returns A short pattern without zero bytes.
 *
 * @example Usage
 * ```ts
 * import { tenantPattern } from "./run_workload.ts";
 * import assert from "node:assert/strict";
 *
 * const pattern = tenantPattern({ tenant_id: "acme", request_id: "r1" });
 * assert.ok(pattern.every((byte) => byte !== 0));
 * ```
 */
export function tenantPattern(
  request: Pick<WorkloadRequest, "tenant_id" | "request_id">,
): Uint8Array {
  return encoder.encode(`${request.tenant_id}/${request.request_id}|`);
}

/**
 * Runs every request through the tracer. A policy refusal (quarantine) is counted and the run
 * goes on; any other failure — a log that cannot be written above all, or a bad workload
 * line — ends it once the requests in flight have finished, and is then thrown.
 *
 * @param tracer The tracer (its metrics hold the outcome).
 * @param sanitizer The tracer's backend, used to write the tenants' bytes.
 * @param requests The workload.
 * @param options Concurrency and progress.
 * @returns Counts and wall time.
 *
 * @example Usage
 * ```ts
 * import { CacheTracer, CpuSanitizer } from "../../mod.ts";
 * import { runWorkload } from "./run_workload.ts";
 * import { syntheticWorkload } from "./synthetic_workload.ts";
 * import type { RecordV2 } from "../forensic/types.ts";
 * import assert from "node:assert/strict";
 *
 * const sanitizer = new CpuSanitizer();
 * const audit = { append: () => Promise.resolve({} as RecordV2) };
 * const tracer = new CacheTracer({ sanitizer, audit, defaultMaxReuse: -1 });
 * const summary = await runWorkload(tracer, sanitizer, syntheticWorkload({ requests: 20 }));
 * assert.equal(summary.completed, 20);
 * await tracer.close();
 * ```
 */
export async function runWorkload(
  tracer: CacheTracer,
  sanitizer: Sanitizer,
  requests: Iterable<WorkloadRequest> | AsyncIterable<WorkloadRequest>,
  options: RunWorkloadOptions = {},
): Promise<WorkloadSummary> {
  const { concurrency = 8, onProgress, signal } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`Invalid concurrency: expected a positive integer, got ${concurrency}`);
  }
  const pool = new Map<number, string[]>();
  const summary: WorkloadSummary = {
    requests: 0,
    completed: 0,
    failed: 0,
    quarantined: 0,
    reused: 0,
    kvBytes: 0,
    elapsedMs: 0,
  };
  const started = performance.now();

  async function serve(request: WorkloadRequest): Promise<void> {
    const owner = {
      tenantId: request.tenant_id,
      requestId: request.request_id,
      modelId: request.model_id,
    };
    const nbytes = kvBytes(request);
    let handle: string | undefined;
    const free = pool.get(nbytes);
    const candidate = free?.pop();
    if (candidate !== undefined) {
      try {
        handle = await tracer.reuse(candidate, owner);
        summary.reused++;
      } catch (error) {
        if (!(error instanceof PolicyViolationError)) throw error;
        summary.quarantined++;
      }
    }
    handle ??= await tracer.allocate({ ...owner, shape: kvShape(request), dtype: request.dtype });
    await tracer.markInUse(handle);
    await sanitizer.fill(tracer.buffer(handle), tenantPattern(request));
    await tracer.sanitize(handle);
    await tracer.free(handle);
    const list = pool.get(nbytes) ?? [];
    list.push(handle);
    pool.set(nbytes, list);
    summary.completed++;
  }

  const inFlight = new Set<Promise<void>>();
  // Resolved by the next request to finish while the loop waits for a free slot: one promise
  // per wait, where Promise.race would add a reaction to every request in flight each time.
  let slotFreed: (() => void) | undefined;
  let failure: unknown = undefined;
  const iterator = Symbol.asyncIterator in requests
    ? requests[Symbol.asyncIterator]()
    : requests[Symbol.iterator]();
  // A workload read can block for as long as its writer likes (stdin from a slow producer): an
  // abort must not wait for the next line, so it settles the read under way. (Racing each read
  // against one promise of the abort left a reaction on that promise per request, which kept
  // every request alive until the run ended: the heap grew with the workload.)
  let settleRead: ((step: "aborted") => void) | undefined;
  signal?.addEventListener("abort", () => settleRead?.("aborted"), { once: true });
  const read = () =>
    new Promise<IteratorResult<WorkloadRequest> | "aborted">((resolve, reject) => {
      settleRead = resolve;
      Promise.resolve(iterator.next()).then(resolve, reject);
    });
  let exhausted = false;
  while (failure === undefined && !signal?.aborted) {
    let step: IteratorResult<WorkloadRequest> | "aborted";
    try {
      step = await read();
    } catch (error) {
      // A bad workload line: the requests already taken still finish before it is reported.
      failure = error;
      break;
    }
    if (step === "aborted") break;
    if (step.done) {
      exhausted = true;
      break;
    }
    const request = step.value;
    summary.requests++;
    summary.kvBytes += kvBytes(request);
    const task = serve(request).catch((error) => {
      if (error instanceof PolicyViolationError || error instanceof CoverageBelowThresholdError) {
        summary.failed++;
        summary.quarantined++;
      } else {
        failure ??= error;
      }
    }).finally(() => {
      inFlight.delete(task);
      slotFreed?.();
      onProgress?.(summary.completed + summary.failed);
    });
    inFlight.add(task);
    if (inFlight.size >= concurrency) {
      await new Promise<void>((resolve) => slotFreed = resolve);
      slotFreed = undefined;
    }
  }
  settleRead = undefined;
  // Releases the source as `for await` would; not awaited, since a generator's return() runs
  // only after a read still pending.
  if (!exhausted) Promise.resolve(iterator.return?.()).catch(() => {});
  await Promise.all(inFlight);
  summary.elapsedMs = performance.now() - started;
  if (failure !== undefined) throw failure;
  return summary;
}
