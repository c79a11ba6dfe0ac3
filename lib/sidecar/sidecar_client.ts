/**
 * The TypeScript client of the sidecar protocol (docs/protocol.md): for engines and tools
 * written in TypeScript, and for kvh's own tests and benchmark. Requests may be pipelined:
 * each call sends its line without waiting for earlier replies (the lines of calls made in one
 * turn of the event loop share a write) and resolves when the reply with its id arrives.
 *
 * @module
 */
import { LineWriter, readLineBatches } from "./_line_io.ts";
import { PROTOCOL_VERSION, type ReleaseResult, type SidecarReply } from "./types.ts";

/** An `ok:false` reply, as an error. */
export class SidecarReplyError extends Error {
  /** The whole reply. */
  readonly reply: SidecarReply;

  /**
   * Creates the error.
   *
   * @param reply The `ok:false` reply.
   */
  constructor(reply: SidecarReply) {
    super(`Sidecar error ${reply.error?.code}: ${reply.error?.message}`);
    this.name = "SidecarReplyError";
    this.reply = reply;
  }

  /** The reply's `error.code`. */
  get code(): string {
    return this.reply.error?.code ?? "";
  }
}

/**
 * A connection to `kvh trace --listen`.
 *
 * @example Usage
 * ```ts ignore
 * import { SidecarClient } from "./sidecar_client.ts";
 *
 * const kvh = await SidecarClient.connect("/run/kvh/kvh.sock");
 * await kvh.request("hello", { engine: "my-engine", pid: Deno.pid });
 * const { handle } = await kvh.request("assign", {
 *   pool: "kv0", blocks: [3, 4], tenant_id: "acme", request_id: "r1", model_id: "m",
 * });
 * const released = await kvh.release(handle as string); // zeroed and read back
 * console.log(released.coverage_pct);
 * kvh.close();
 * ```
 */
export class SidecarClient {
  #conn: Deno.Conn;
  #nextId = 1;
  #waiting = new Map<
    number,
    { resolve: (reply: SidecarReply) => void; reject: (e: Error) => void }
  >();
  #closed: Error | undefined;
  #reading: Promise<void>;
  // Requests sent in one turn of the event loop (pipelined by concurrent callers) share a write.
  #lines: LineWriter<never>;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#lines = new LineWriter(conn, (_, error) => {
      if (error !== undefined) this.#fail(error);
    });
    this.#reading = this.#read();
  }

  /**
   * Connects to a daemon.
   *
   * @param path The Unix socket path (without `unix:`).
   * @returns The client.
   */
  static async connect(path: string): Promise<SidecarClient> {
    return new SidecarClient(await Deno.connect({ transport: "unix", path }));
  }

  /**
   * Sends one request and waits for its reply, whatever `ok` says.
   *
   * @param op The operation.
   * @param fields The request's fields.
   * @returns The reply.
   */
  send(op: string, fields: Record<string, unknown> = {}): Promise<SidecarReply> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    const line = JSON.stringify({ v: PROTOCOL_VERSION, ...fields, id, op });
    const reply = new Promise<SidecarReply>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
    });
    void this.#lines.send(line);
    return reply;
  }

  /**
   * Sends one request; rejects with {@linkcode SidecarReplyError} on `ok:false`.
   *
   * @param op The operation.
   * @param fields The request's fields.
   * @returns The successful reply.
   */
  async request(op: string, fields: Record<string, unknown> = {}): Promise<SidecarReply> {
    const reply = await this.send(op, fields);
    if (!reply.ok) throw new SidecarReplyError(reply);
    return reply;
  }

  /**
   * Releases a handle: resolves once kvh zeroed and read back its blocks.
   *
   * @param handle The handle `assign` returned.
   * @returns Coverage, bytes and duration.
   */
  async release(handle: string): Promise<ReleaseResult> {
    return await this.request("release", { handle }) as unknown as ReleaseResult;
  }

  async #read(): Promise<void> {
    try {
      for await (const lines of readLineBatches(this.#conn, Number.MAX_SAFE_INTEGER)) {
        for (const line of lines) {
          const parsed = JSON.parse(line!) as SidecarReply | SidecarReply[];
          for (const reply of Array.isArray(parsed) ? parsed : [parsed]) {
            const waiter = typeof reply.id === "number" ? this.#waiting.get(reply.id) : undefined;
            if (waiter === undefined) continue;
            this.#waiting.delete(reply.id as number);
            waiter.resolve(reply);
          }
        }
      }
      this.#fail(new Error("Sidecar connection closed"));
    } catch (error) {
      this.#fail(error as Error);
    }
  }

  #fail(error: Error): void {
    this.#closed ??= error;
    for (const waiter of this.#waiting.values()) waiter.reject(this.#closed);
    this.#waiting.clear();
  }

  /**
   * Closes the connection; requests still waiting reject (their blocks stay dirty).
   *
   * @returns When the reader stopped.
   */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Already closed by the daemon.
    }
    await this.#reading;
  }
}
