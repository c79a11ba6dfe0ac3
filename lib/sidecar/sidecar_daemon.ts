/**
 * The sidecar daemon behind `kvh trace --listen unix:PATH` (DESIGN.md §7b): accepts engine
 * connections on a local socket, speaks the line-delimited JSON protocol of docs/protocol.md
 * and scrubs the engines' own memory. Requests of one connection may be pipelined (each line
 * starts as it arrives; replies carry the request's id and may come in any order) or batched
 * (a line holding a JSON array gets one array of replies, in order).
 *
 * @module
 */
import type { AuditSink } from "../forensic/types.ts";
import { MetricsCollector } from "../metrics/collector.ts";
import type { MetricsSnapshot, RunStatus } from "../metrics/types.ts";
import type { DaemonContext, DaemonCounters } from "./_context.ts";
import { openCpuPool } from "./cpu_pool.ts";
import { LineWriter, readLineBatches } from "./_line_io.ts";
import type { CudaPoolRequest, EnginePool } from "./engine_pool.ts";
import type { PoolFiles } from "./pool_files.ts";
import { SidecarRequestError } from "./request_error.ts";
import { SidecarSession } from "./sidecar_session.ts";
import {
  DEFAULT_LIMITS,
  PROTOCOL_VERSION,
  type SidecarLimits,
  type SidecarReply,
  type SidecarStats,
} from "./types.ts";

/** Options of {@linkcode SidecarDaemon}. */
export interface SidecarDaemonOptions {
  /** The forensic log (or a test double). */
  audit: AuditSink;
  /** Directories CPU pools must resolve under, already resolved through symlinks. */
  poolDirs: readonly string[];
  /** Evidence files no pool may be: the log's chain, its lock, the metrics files. */
  protectedFiles?: readonly string[];
  /** Directories no pool may be inside: the log directory. */
  protectedDirs?: readonly string[];
  /**
   * File operations of CPU pools.
   *
   * @default {defaultPoolFiles()}
   */
  poolFiles?: PoolFiles;
  /**
   * Coverage a release needs, in percent; below it the blocks are quarantined.
   *
   * @default {99.9}
   */
  coverageThresholdPct?: number;
  /**
   * Zero every range twice before the read-back.
   *
   * @default {false}
   */
  doublePass?: boolean;
  /** Limits announced in `hello` and enforced; unset ones take {@linkcode DEFAULT_LIMITS}. */
  limits?: Partial<SidecarLimits>;
  /** Opens CUDA pools; unset, `register_pool` with `device: "cuda"` answers `device_unavailable`. */
  openCudaPool?: (request: CudaPoolRequest) => Promise<EnginePool>;
  /** Called after each change the metrics show (the CLI rewrites the metrics files). */
  onChange?: () => void;
}

/** Outcome of {@linkcode SidecarDaemon.stop}. */
export interface StopResult {
  /** Releases still unfinished when the drain gave up: their blocks stay dirty. */
  abandonedReleases: number;
}

const REGISTER = /"op"\s*:\s*"register_pool"/;
// Release durations kept for the metrics' p50/p95 (a uniform sample of them all): the daemon
// runs for days, and the metrics are rewritten every second from a sort of what is kept.
const DURATION_SAMPLES = 8192;

type Outcome = { reply: SidecarReply; op: string | null };

/**
 * Requests that have not finished, counted: how many, and a wait for fewer than some number.
 * A set of their promises, each with a `finally` to leave it, costs allocations per request
 * that the young generation of a busy daemon pays for in collections.
 */
class InFlight {
  #count = 0;
  #waiting: { below: number; wake: () => void }[] = [];

  get count(): number {
    return this.#count;
  }

  start(): void {
    this.#count++;
  }

  end(): void {
    this.#count--;
    if (this.#waiting.length === 0) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) {
      if (this.#count < w.below) w.wake();
      else this.#waiting.push(w);
    }
  }

  /** Resolves once fewer than `below` are in flight. */
  fewerThan(below: number): Promise<void> {
    if (this.#count < below) return Promise.resolve();
    return new Promise((wake) => this.#waiting.push({ below, wake }));
  }
}

/**
 * The daemon. One instance serves any number of connections; each connection's pools and
 * handles are its own.
 *
 * @example Usage
 * ```ts
 * import { SidecarDaemon } from "./sidecar_daemon.ts";
 * import type { AuditSink, RecordV2 } from "../forensic/types.ts";
 * import assert from "node:assert/strict";
 *
 * const audit: AuditSink = { append: () => Promise.resolve({} as RecordV2) };
 * const daemon = new SidecarDaemon({ audit, poolDirs: ["/dev/shm"] });
 * const session = daemon.openSession();
 * const replies = await daemon.handleLine(session, '{"v":1,"id":1,"op":"hello","engine":"x","pid":1}');
 * assert.equal(replies[0]!.reply.ok, true);
 * assert.equal(replies[0]!.reply.protocol, 1);
 * await daemon.stop();
 * ```
 */
export class SidecarDaemon {
  #ctx: DaemonContext;
  #identities = new Map<string, object>();
  #sessions = new Set<SidecarSession>();
  #conns = new Set<Deno.Conn>();
  #inflight = new InFlight();
  #releasesInFlight = 0;
  #shuttingDown = false;
  #listener: Deno.Listener | undefined;

  /**
   * Creates a daemon.
   *
   * @param options Log, pool directories, policy and limits.
   */
  constructor(options: SidecarDaemonOptions) {
    const thresholdPct = options.coverageThresholdPct ?? 99.9;
    const counters: DaemonCounters = {
      assignedBlocks: 0,
      assignedEver: 0,
      quarantinedBlocks: 0,
      releasedBlocks: 0,
      releases: 0,
      scrubbedBytes: 0,
      errors: 0,
      abandonedReleases: 0,
    };
    const cpuOptions = {
      poolDirs: options.poolDirs,
      protectedFiles: options.protectedFiles,
      protectedDirs: options.protectedDirs,
      files: options.poolFiles,
    };
    const onChange = options.onChange ?? (() => {});
    this.#ctx = {
      audit: options.audit,
      metrics: new MetricsCollector({
        thresholdPct,
        verifyMode: "full",
        device: "sidecar",
        durationSamples: DURATION_SAMPLES,
      }),
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      thresholdPct,
      doublePass: options.doublePass ?? false,
      devices: options.openCudaPool === undefined ? ["cpu"] : ["cpu", "cuda"],
      counters,
      openCpuPool: (path, bytes) => openCpuPool(path, bytes, cpuOptions),
      openCudaPool: options.openCudaPool,
      claimIdentity: (identity, owner) => {
        const holder = this.#identities.get(identity);
        if (holder !== undefined && holder !== owner) return false;
        this.#identities.set(identity, owner);
        return true;
      },
      releaseIdentity: (identity, owner) => {
        if (this.#identities.get(identity) === owner) this.#identities.delete(identity);
      },
      isShuttingDown: () => this.#shuttingDown,
      changed: onChange,
      stats: (pools) => this.#stats(pools),
    };
  }

  #stats(pools: number): SidecarStats {
    const c = this.#ctx.counters;
    return {
      connections: this.#sessions.size,
      pools,
      assigned_blocks: c.assignedBlocks,
      quarantined_blocks: c.quarantinedBlocks,
      releases: c.releases,
      scrubbed_bytes: c.scrubbedBytes,
      errors: c.errors,
    };
  }

  /**
   * The metrics document of everything so far: a block is the tracer's buffer (assigned =
   * allocated, released = freed), a release is a scrub.
   *
   * @param runStatus How the run stands.
   * @returns The snapshot.
   */
  metrics(runStatus: RunStatus = "running"): MetricsSnapshot {
    const c = this.#ctx.counters;
    return this.#ctx.metrics.snapshot({
      totalBuffers: c.assignedEver,
      activeBuffers: c.assignedBlocks,
      unsanitizedBuffers: c.assignedBlocks,
      quarantinedBuffers: c.quarantinedBlocks,
      freedBuffers: c.releasedBlocks,
    }, runStatus);
  }

  /**
   * Accepts connections until {@linkcode SidecarDaemon.stop}.
   *
   * @param listener A listening socket (the CLI's Unix socket).
   * @returns When the listener is closed.
   */
  async serve(listener: Deno.Listener): Promise<void> {
    this.#listener = listener;
    try {
      for await (const conn of listener) void this.serveConnection(conn);
    } catch (error) {
      if (!this.#shuttingDown) throw error;
    }
  }

  /**
   * Opens a session for a new connection (also what tests drive without a socket).
   *
   * @returns The session.
   */
  openSession(): SidecarSession {
    const session = new SidecarSession(this.#ctx);
    this.#sessions.add(session);
    return session;
  }

  /**
   * Serves one connection until it closes: reads lines, answers each, and on the end
   * quarantines what the engine never saw acknowledged.
   *
   * @param conn The connection.
   * @returns When the connection is done.
   */
  async serveConnection(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    const session = this.openSession();
    // Lines being answered, until their reply is written (each line gets one reply line).
    const pending = new InFlight();
    const replies: Replies = new LineWriter(conn, async (written, error) => {
      try {
        // A reply that never reached the engine: its release is quarantined, as the engine
        // treats it.
        if (error === undefined) return;
        for (const tag of written) {
          for (const o of Array.isArray(tag) ? tag : [tag]) {
            if (o.reply.ok && o.op !== null) await session.undelivered(o.op, o.reply);
          }
        }
      } finally {
        for (let i = 0; i < written.length; i++) pending.end();
      }
    });
    let barrier: Promise<unknown> | undefined;
    try {
      // The lines of one read start together: their releases share one scrub call and their
      // replies one write.
      reading: for await (const lines of readLineBatches(conn, this.#ctx.limits.max_line_bytes)) {
        for (const line of lines) {
          pending.start();
          if (line === null) {
            const error = new SidecarRequestError(
              "line_too_long",
              `A request line exceeds ${this.#ctx.limits.max_line_bytes} bytes`,
            );
            send(replies, this.#failed(null, error));
            continue;
          }
          // A pool registration opens a file or a GPU mapping (awaits): the lines after it wait
          // for it, so a pipelined assign finds its pool. Everything else starts at once.
          const answered = barrier === undefined
            ? this.#answer(session, line, replies)
            : this.#after(barrier, session, line, replies);
          if (REGISTER.test(line)) {
            const current: Promise<unknown> = answered.catch(() => {});
            barrier = current;
            void current.then(() => {
              if (barrier === current) barrier = undefined;
            });
          }
          // Backpressure: a client that pipelines without reading its replies stops being read.
          if (pending.count >= this.#ctx.limits.max_in_flight) {
            await pending.fewerThan(this.#ctx.limits.max_in_flight);
          }
          if (this.#isBye(line)) {
            // Leaving the loop closes the connection: answer first.
            await pending.fewerThan(1);
            await replies.drained();
            break reading;
          }
        }
      }
    } catch {
      // A reset connection ends like a closed one.
    } finally {
      await pending.fewerThan(1);
      await replies.drained();
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed by stop().
      }
      await session.close(this.#shuttingDown ? "shutdown" : "client_disconnected");
      this.#sessions.delete(session);
      this.#ctx.changed();
    }
  }

  // A method of its own: a closure over the line in the loop of serveConnection would cost every
  // line a context, barrier or not.
  #after(
    barrier: Promise<unknown>,
    session: SidecarSession,
    line: string,
    replies: Replies,
  ): Promise<unknown> {
    return barrier.then(() => this.#answer(session, line, replies));
  }

  // Starts the request(s) of one line; each line gets one reply line, an array for a batch line
  // whatever went wrong. The reply of a single request is sent by #one itself: no promise of
  // the line's own between the request's result and its write.
  #answer(session: SidecarSession, line: string, replies: Replies): Promise<unknown> {
    const parsed = parseLine(line);
    if (parsed === NOT_JSON) {
      const outcome = this.#notJson();
      send(replies, line.trimStart().startsWith("[") ? [outcome] : outcome);
      return Promise.resolve();
    }
    if (!Array.isArray(parsed)) return this.#one(session, parsed, replies);
    return this.#batch(session, parsed).then((outcomes) => send(replies, outcomes));
  }

  /**
   * Answers one line: a request object or a batch (JSON array). Requests start in order;
   * `register_pool` completes before the requests after it start, so a pipelined assign sees
   * the pool it follows.
   *
   * @param session The connection's session.
   * @param line The line, without its newline.
   * @returns One outcome per request (one for a line that is not JSON).
   */
  async handleLine(session: SidecarSession, line: string): Promise<Outcome[]> {
    const parsed = parseLine(line);
    if (parsed === NOT_JSON) return [this.#notJson()];
    return Array.isArray(parsed)
      ? await this.#batch(session, parsed)
      : [await this.#one(session, parsed)];
  }

  #isBye(line: string): boolean {
    return /"op"\s*:\s*"bye"/.test(line) && !line.trimStart().startsWith("[");
  }

  #notJson(): Outcome {
    return this.#failed(
      null,
      new SidecarRequestError("malformed_json", "The line is not a JSON document"),
    );
  }

  async #batch(session: SidecarSession, parsed: unknown[]): Promise<Outcome[]> {
    if (parsed.length === 0 || parsed.length > this.#ctx.limits.max_batch) {
      return [this.#failed(
        null,
        new SidecarRequestError(
          "invalid_request",
          `A batch holds 1 to ${this.#ctx.limits.max_batch} requests, got ${parsed.length}`,
        ),
      )];
    }
    const started: Promise<Outcome>[] = [];
    for (const request of parsed) {
      const outcome = this.#one(session, request);
      started.push(outcome);
      if (isObject(request) && request.op === "register_pool") await outcome;
    }
    return await Promise.all(started);
  }

  // Runs one request; with `replies`, also sends its reply.
  async #one(session: SidecarSession, request: unknown, replies?: Replies): Promise<Outcome> {
    let outcome: Outcome;
    const id =
      isObject(request) && (typeof request.id === "number" || typeof request.id === "string")
        ? request.id
        : null;
    const refused = refusal(request);
    if (refused !== undefined) outcome = this.#failed(id, refused);
    else {
      const op = (request as Fields).op as string;
      const release = op === "release";
      this.#inflight.start();
      if (release) this.#releasesInFlight++;
      try {
        // Runs up to its first await now: requests take effect in the order they started.
        const result = await session.handle(op, request as Fields);
        // The result object is this request's own: the envelope goes onto it rather than onto
        // a copy, after the result fields as on the wire so far.
        result.v = PROTOCOL_VERSION;
        result.id = id;
        result.ok = true;
        outcome = { reply: result as SidecarReply, op };
      } catch (error) {
        outcome = this.#failed(id, error);
      } finally {
        if (release) this.#releasesInFlight--;
        this.#inflight.end();
      }
    }
    if (replies !== undefined) send(replies, outcome);
    return outcome;
  }

  #failed(id: number | string | null, error: unknown): Outcome {
    this.#ctx.counters.errors++;
    const wire = error instanceof SidecarRequestError
      ? error
      : new SidecarRequestError("invalid_request", `Request failed: ${(error as Error).message}`);
    return { reply: errorReply(id, wire), op: null };
  }

  /**
   * Stops: no new connections or requests, waits up to `drainMs` for the requests in flight
   * (releases finish, are logged and answered), then ends every connection; what is still
   * assigned is quarantined in the log.
   *
   * @param drainMs Longest wait for requests in flight.
   * @returns How many releases were abandoned (0 for a drained stop).
   */
  async stop(drainMs = 30_000): Promise<StopResult> {
    this.#shuttingDown = true;
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), drainMs);
    });
    const drained = await Promise.race([
      this.#inflight.fewerThan(1).then(() => "drained" as const),
      timeout,
    ]);
    clearTimeout(timer);
    const abandoned = drained === "timeout" ? this.#releasesInFlight : 0;
    this.#ctx.counters.abandonedReleases += abandoned;
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    for (const session of this.#sessions) await session.close("shutdown");
    this.#sessions.clear();
    return { abandonedReleases: abandoned };
  }
}

type Fields = Record<string, unknown>;
type Replies = LineWriter<Outcome | Outcome[]>;

const NOT_JSON = Symbol("not JSON");

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return NOT_JSON;
  }
}

// Why a request cannot run, before its op is looked at.
function refusal(request: unknown): SidecarRequestError | undefined {
  if (!isObject(request)) {
    return new SidecarRequestError("invalid_request", "A request must be a JSON object");
  }
  if (request.v !== PROTOCOL_VERSION) {
    return new SidecarRequestError(
      "unsupported_version",
      `Protocol version ${
        JSON.stringify(request.v)
      } is not supported: this kvh speaks ${PROTOCOL_VERSION}`,
    );
  }
  if (typeof request.op !== "string") {
    return new SidecarRequestError("invalid_request", "A request needs an op string");
  }
  return undefined;
}

// Queues the reply line of one line: an array of replies for a batch.
function send(replies: Replies, outcome: Outcome | Outcome[]): void {
  const text = Array.isArray(outcome)
    ? JSON.stringify(outcome.map((o) => o.reply))
    : JSON.stringify(outcome.reply);
  void replies.send(text, outcome);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function errorReply(id: number | string | null, error: SidecarRequestError): SidecarReply {
  return { v: PROTOCOL_VERSION, id, ok: false, error: error.toWire() };
}
