/**
 * A minimal, strict HTTP/1.1 server over a `Deno.Listener` that owns its accept loop, for the
 * metrics exporter (issue 9 item 9). Deno 2.9.6's `Deno.serve` has no header timeout and stops
 * serving when `accept` fails with EMFILE, so a few thousand idle connections could take the
 * exporter down. Here:
 *
 * - a connection that has not sent a complete request head within `headerTimeoutMs` (and one
 *   whose reader stalls a response as long) is closed;
 * - at most `maxConnections` are open; at the cap, the connection idle the longest (waiting for a
 *   head) is closed to make room, so a new scrape is always answered;
 * - a failed `accept` (EMFILE, ENFILE, ENOBUFS) closes an idle connection, backs off and keeps
 *   accepting.
 *
 * Request heads are parsed strictly (RFC 9112 §2-§5: CRLF line ends, token method, origin-form
 * target, no obs-fold, no whitespace before a colon, one Content-Length, not both framing
 * headers); anything else is answered 400 and the connection closed. Bodies are never read: a
 * request that announces one is answered (the app refuses it) and the connection closed.
 *
 * @module
 */

/** What {@linkcode serveHttp1} needs of a listener: `Deno.listen()`'s result, or a test double. */
export interface Http1Listener {
  /** The next connection. */
  accept(): Promise<Deno.Conn>;
  /** Stops listening. */
  close(): void;
  /** The bound address. */
  readonly addr: Deno.Addr;
}

/** Options of {@linkcode serveHttp1}. */
export interface ServeHttp1Options {
  /**
   * Time a connection may take to send a complete request head (from connect, or from the end of
   * the previous response), and a reader may take to accept the next bytes of a response.
   *
   * @default {10000}
   */
  headerTimeoutMs?: number;
  /**
   * Most connections open at once; keep it below the process's file-descriptor limit (see
   * {@linkcode defaultMaxConnections}).
   *
   * @default {1024}
   */
  maxConnections?: number;
  /**
   * Largest request head (request line and headers) buffered; a larger one is answered 431.
   *
   * @default {16384}
   */
  maxHeadBytes?: number;
  /**
   * Receives one line when accepting starts failing and one when it recovers.
   *
   * @default {() => {}}
   */
  log?: (line: string) => void;
}

/** A running server from {@linkcode serveHttp1}. */
export interface Http1Server {
  /** Resolves once the listener is closed and every connection has ended. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting, closes idle connections, lets requests in progress finish their response.
   *
   * @returns The same promise as {@linkcode Http1Server.finished}.
   */
  shutdown(): Promise<void>;
  /** Connections open now. */
  readonly connections: number;
}

type State = "head" | "handler" | "write";

interface Connection {
  conn: Deno.Conn;
  state: State;
  /** `performance.now()` after which the sweeper closes the connection, unless in the handler. */
  deadline: number;
  closed: boolean;
}

const CR = 13;
const LF = 10;
// Origin-form target (RFC 9112 §3.2.1): visible ASCII, starting with a slash.
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\/[!-~]*) HTTP\/1\.([01])$/;
// Field value: visible characters, spaces and tabs, obs-text; no control characters.
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\t -~\x80-\xff]*?)[ \t]*$/;
const DIGITS = /^[0-9]{1,15}$/;
const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Payload Too Large",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};
const encoder = new TextEncoder();
const MAX_BACKOFF_MS = 1000;

/**
 * The number of connections to allow for a process whose soft file-descriptor limit is
 * `openFileLimit`: 64 descriptors stay free for the files the process reads, at most 1024.
 *
 * @param openFileLimit The soft `RLIMIT_NOFILE`, e.g. from {@linkcode readOpenFileLimit}.
 * @returns The cap to pass as `maxConnections`.
 *
 * @example Usage
 * ```ts
 * import { defaultMaxConnections } from "./serve_http1.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(defaultMaxConnections(256), 192);
 * assert.equal(defaultMaxConnections(1_048_576), 1024);
 * ```
 */
export function defaultMaxConnections(openFileLimit: number): number {
  return Math.max(8, Math.min(1024, openFileLimit - 64));
}

/**
 * The soft open-file limit of this process from `/proc/self/limits` (Linux), or `undefined`
 * where that file is not readable.
 *
 * @returns The limit, or `undefined`.
 *
 * @example Usage
 * ```ts
 * import { readOpenFileLimit } from "./serve_http1.ts";
 * import assert from "node:assert/strict";
 *
 * const limit = readOpenFileLimit();
 * assert.ok(limit === undefined || limit > 0);
 * ```
 */
export function readOpenFileLimit(): number | undefined {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
    if (match === null) return undefined;
    return match[1] === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(match[1]);
  } catch {
    return undefined;
  }
}

/**
 * Serves HTTP/1.1 on `listener`, handing each request to `handler` (e.g. a hono app's `fetch`).
 *
 * @param listener A TCP listener, e.g. `Deno.listen({ hostname, port })`.
 * @param handler Answers one request; its body is never read by the server.
 * @param options Timeouts, the connection cap and logging.
 * @returns The running server.
 *
 * @example Serve and stop
 * ```ts
 * import { serveHttp1 } from "./serve_http1.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const server = serveHttp1(listener, () => new Response("ok\n"));
 * const res = await fetch(`http://127.0.0.1:${listener.addr.port}/`);
 * assert.equal(await res.text(), "ok\n");
 * await server.shutdown();
 * ```
 */
export function serveHttp1(
  listener: Http1Listener,
  handler: (request: Request) => Response | Promise<Response>,
  options: ServeHttp1Options = {},
): Http1Server {
  const {
    headerTimeoutMs = 10_000,
    maxConnections = 1024,
    maxHeadBytes = 16384,
    log = () => {},
  } = options;
  if (!(headerTimeoutMs > 0) || !(maxConnections >= 1) || !(maxHeadBytes >= 64)) {
    throw new TypeError(
      `Invalid server limits: got headerTimeoutMs ${headerTimeoutMs}, maxConnections ${maxConnections}, maxHeadBytes ${maxHeadBytes}`,
    );
  }
  const addr = listener.addr as Deno.NetAddr;
  const host = addr.hostname?.includes(":") ? `[${addr.hostname}]` : addr.hostname ?? "localhost";
  const base = `http://${host}:${addr.port ?? 0}`;
  const open = new Set<Connection>();
  let closing = false;
  let resolveDrained: () => void = () => {};
  const drained = new Promise<void>((resolve) => resolveDrained = resolve);

  const sweepEvery = Math.min(1000, Math.max(5, headerTimeoutMs / 4));
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const c of open) if (c.state !== "handler" && now > c.deadline) close(c);
  }, sweepEvery);

  function close(c: Connection): void {
    if (c.closed) return;
    c.closed = true;
    open.delete(c);
    try {
      c.conn.close();
    } catch {
      // Already closed by the peer's reset: nothing left to release.
    }
    if (closing && open.size === 0) resolveDrained();
  }

  /** Closes the connection waiting longest for a head; false when every one is busy. */
  function evictIdle(): boolean {
    for (const c of open) {
      if (c.state === "head") {
        close(c);
        return true;
      }
    }
    return false;
  }

  async function write(c: Connection, bytes: Uint8Array): Promise<void> {
    c.state = "write";
    let at = 0;
    while (at < bytes.length) {
      c.deadline = performance.now() + headerTimeoutMs;
      at += await c.conn.write(bytes.subarray(at));
    }
  }

  /** Sends a response of the server's own (the request never reached the handler) and closes. */
  async function refuse(c: Connection, status: number, extra = ""): Promise<void> {
    const text = `${STATUS_TEXT[status]}\n`;
    await write(
      c,
      encoder.encode(
        `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\ndate: ${httpDate()}\r\n${extra}` +
          `content-type: text/plain; charset=utf-8\r\ncontent-length: ${text.length}\r\n` +
          `connection: close\r\n\r\n${text}`,
      ),
    );
  }

  /** Half-closes and reads what the client still sends, so closing does not reset the answer. */
  async function lingerClose(c: Connection, buffer: Uint8Array): Promise<void> {
    c.state = "write";
    c.deadline = performance.now() + Math.min(headerTimeoutMs, 2000);
    try {
      await c.conn.closeWrite();
      for (let total = 0; total < 1 << 20;) {
        const n = await c.conn.read(buffer);
        if (n === null) break;
        total += n;
      }
    } catch {
      // Reset or closed by the sweeper: the answer was already written.
    }
  }

  async function serveConnection(c: Connection): Promise<void> {
    let buffer = new Uint8Array(Math.min(4096, maxHeadBytes));
    let length = 0;
    let linger = false;
    try {
      while (!closing) {
        c.state = "head";
        c.deadline = performance.now() + headerTimeoutMs;
        let scanned = 0;
        let end = -1;
        while ((end = headEnd(buffer, scanned, length)) < 0) {
          scanned = Math.max(0, length - 3);
          if (length === buffer.length) {
            if (buffer.length >= maxHeadBytes) {
              await refuse(c, 431);
              linger = true;
              return;
            }
            const grown = new Uint8Array(Math.min(buffer.length * 2, maxHeadBytes));
            grown.set(buffer);
            buffer = grown;
          }
          const n = await c.conn.read(buffer.subarray(length));
          if (n === null || closing) return;
          length += n;
        }
        c.state = "handler";
        const head = parseHead(buffer, end);
        buffer.copyWithin(0, end, length);
        length -= end;
        if (typeof head === "number") {
          await refuse(c, head);
          linger = true;
          return;
        }
        let request: Request;
        try {
          request = new Request(base + head.target, { method: head.method, headers: head.headers });
        } catch {
          // The Fetch standard forbids CONNECT, TRACE and TRACK (the method is a token by now);
          // the exporter serves none of them.
          await refuse(c, 405, "allow: GET, HEAD\r\n");
          linger = true;
          return;
        }
        let response: Response;
        try {
          response = await handler(request);
        } catch {
          response = new Response("Internal Server Error\n", { status: 500 });
        }
        const keepAlive = head.keepAlive && !head.hasBody && !closing;
        await write(c, await serialize(response, head.method === "HEAD", keepAlive));
        if (!keepAlive) {
          linger = head.hasBody;
          return;
        }
      }
    } catch {
      // Reset by the peer, or closed by the sweeper or shutdown: the connection is done.
    } finally {
      if (linger && !c.closed) await lingerClose(c, buffer);
      close(c);
    }
  }

  async function acceptLoop(): Promise<void> {
    let backoffMs = 0;
    while (!closing) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closing) break;
        // EMFILE and friends: free a descriptor if an idle connection holds one, wait, retry.
        if (backoffMs === 0) {
          log(`Cannot accept connections: ${firstLine(error)}; retrying with backoff`);
        }
        evictIdle();
        backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(10, backoffMs * 2));
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        continue;
      }
      if (backoffMs !== 0) {
        log("Accepting connections again");
        backoffMs = 0;
      }
      if (closing) {
        conn.close();
        break;
      }
      if (open.size >= maxConnections && !evictIdle()) {
        conn.close();
        continue;
      }
      const c: Connection = { conn, state: "head", deadline: 0, closed: false };
      open.add(c);
      serveConnection(c);
    }
  }

  const accepting = acceptLoop();
  const finished = accepting.then(() => {
    if (open.size > 0) return drained;
  }).finally(() => clearInterval(sweeper));

  return {
    finished,
    shutdown() {
      if (!closing) {
        closing = true;
        try {
          listener.close();
        } catch {
          // Closed already.
        }
        for (const c of open) if (c.state === "head") close(c);
      }
      return finished;
    },
    get connections() {
      return open.size;
    },
  };
}

interface Head {
  method: string;
  target: string;
  headers: Headers;
  keepAlive: boolean;
  hasBody: boolean;
}

/** Index just past the first CRLFCRLF in `buffer[from, length)`, or -1. */
function headEnd(buffer: Uint8Array, from: number, length: number): number {
  for (let i = buffer.indexOf(LF, from); i >= 0 && i < length; i = buffer.indexOf(LF, i + 1)) {
    if (i >= 3 && buffer[i - 1] === CR && buffer[i - 2] === LF && buffer[i - 3] === CR) {
      return i + 1;
    }
  }
  return -1;
}

/** The request head in `buffer[0, end)`, or the status to refuse it with. */
function parseHead(buffer: Uint8Array, end: number): Head | number {
  // Latin-1, byte for byte: Headers accepts exactly these code points (ByteString).
  const text = String.fromCharCode(...buffer.subarray(0, end - 4));
  const lines = text.split("\r\n");
  const request = REQUEST_LINE.exec(lines[0]!);
  if (request === null) return 400;
  const method = request[1]!;
  const headers = new Headers();
  let connection = "";
  let contentLength: string | null = null;
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const field = FIELD_LINE.exec(lines[i]!);
    if (field === null) return 400;
    const name = field[1]!.toLowerCase();
    const value = field[2]!;
    if (name === "content-length") {
      if (!DIGITS.test(value) || (contentLength !== null && contentLength !== value)) return 400;
      contentLength = value;
    } else if (name === "transfer-encoding") {
      chunked = true;
    } else if (name === "connection") {
      connection += `,${value.toLowerCase()}`;
    }
    headers.append(name, value);
  }
  if (chunked && contentLength !== null) return 400;
  const http10 = request[3] === "0";
  const keepAlive = http10
    ? /(^|,)\s*keep-alive\s*(,|$)/.test(connection)
    : !/(^|,)\s*close\s*(,|$)/.test(connection);
  return {
    method,
    target: request[2]!,
    headers,
    keepAlive,
    hasBody: chunked || (contentLength !== null && Number(contentLength) > 0),
  };
}

async function serialize(
  response: Response,
  head: boolean,
  keepAlive: boolean,
): Promise<Uint8Array> {
  let text = `HTTP/1.1 ${response.status} ${STATUS_TEXT[response.status] ?? "Unknown"}\r\n` +
    `date: ${httpDate()}\r\n`;
  for (const [name, value] of response.headers) {
    if (name !== "content-length" && name !== "connection") text += `${name}: ${value}\r\n`;
  }
  let body: Uint8Array | null = null;
  if (head) {
    await response.body?.cancel();
  } else {
    body = await response.bytes();
    text += `content-length: ${body.length}\r\n`;
  }
  if (!keepAlive) text += "connection: close\r\n";
  text += "\r\n";
  const headBytes = encoder.encode(text);
  if (body === null || body.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes, 0);
  out.set(body, headBytes.length);
  return out;
}

let dateSecond = -1;
let dateText = "";

/** The IMF-fixdate of now (RFC 9110 §5.6.7), formatted at most once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? message;
}
