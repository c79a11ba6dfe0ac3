/**
 * The metrics server as a hono app (DESIGN.md §3 `serve-metrics`, STYLE.md item 7): `GET
 * /metrics` answers from memory, `GET /healthz` says the process is alive, everything else is
 * 404 (405 for another method on those two paths). Socket-free: `cli/serve_metrics.ts` hands
 * `app.fetch` to `Deno.serve`, tests call `app.request()`, and an embedding server can mount it.
 *
 * @module
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { MiddlewareHandler } from "hono";
import { gzipSync } from "node:zlib";
import { bearerAuth } from "./bearer_auth.ts";
import { type ExporterCounts, renderSelfMetrics } from "./_self_metrics.ts";
import type { ExpositionSnapshot, MetricsSource } from "./types.ts";

/**
 * Content type of the Prometheus text exposition format 0.0.4, as `/metrics` sends it.
 *
 * @example Check a response
 * ```ts
 * import { createApp, PROMETHEUS_CONTENT_TYPE } from "./app.ts";
 * import assert from "node:assert/strict";
 *
 * const res = await createApp({ source: () => "" }).request("/metrics");
 * assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
 * ```
 */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Options of {@linkcode createApp}. */
export interface CreateAppOptions {
  /**
   * What `/metrics` serves: a {@linkcode MetricsSource} such as `FileMetricsSource`, or a
   * function returning exposition text, e.g. a live registry's `metrics()` in the same process.
   */
  source: MetricsSource | (() => string | Promise<string>);
  /**
   * Bearer token `/metrics` requires; `/healthz` stays open for liveness probes.
   *
   * @default {undefined} (no authentication)
   */
  token?: string | Uint8Array;
  /**
   * Largest request line plus headers accepted; larger is answered 431.
   *
   * @default {8192}
   */
  maxHeaderBytes?: number;
  /**
   * Largest request body accepted (the server never reads one); larger, or of unknown length,
   * is answered 413.
   *
   * @default {1024}
   */
  maxBodyBytes?: number;
  /**
   * Append the exporter's own counters after the source's lines.
   *
   * @default {true}
   */
  selfMetrics?: boolean;
  /**
   * How long one rendering of the self-metrics is reused. A burst of requests then shares one
   * buffer instead of allocating the whole exposition per request; the counters it shows are
   * at most this old, far below any scrape interval. 0 renders every response afresh.
   *
   * @default {100}
   */
  selfMetricsMaxAgeMs?: number;
  /**
   * Receives one line per unexpected error (the client only sees a bare 500).
   *
   * @default {() => {}}
   */
  log?: (line: string) => void;
}

const TEXT_HEADERS = { "content-type": "text/plain; charset=utf-8" } as const;
// Vary only on the gzip variant: a cache that stores the identity body may hand it to any client,
// and each extra header costs microseconds per response in Deno's Headers (measured).
const METRICS_HEADERS = { "content-type": PROMETHEUS_CONTENT_TYPE } as const;
const METRICS_GZIP_HEADERS = {
  ...METRICS_HEADERS,
  "content-encoding": "gzip",
  "vary": "accept-encoding",
} as const;
const NOT_ALLOWED_HEADERS = { ...TEXT_HEADERS, allow: "GET, HEAD" } as const;

/**
 * The exposition as last rendered: the source's body (and its text, when it is valid UTF-8), and
 * body + self-metrics as a plain response and, once a client asks, its gzip, both reused until
 * they are `selfMetricsMaxAgeMs` old so a burst of requests allocates nothing and compresses at
 * most once per rendering. The plain response is a string when it can be: Deno builds a Response
 * from a string several microseconds faster than from bytes (measured).
 */
interface Rendered {
  body: Uint8Array<ArrayBuffer>;
  text: string | null;
  at: number;
  out: string | Uint8Array<ArrayBuffer>;
  gzipOut: Uint8Array<ArrayBuffer> | null;
}

const encoder = new TextEncoder();
// fatal: bytes that are not UTF-8 are served as bytes, never replaced; ignoreBOM: a BOM stays.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeUtf8(body: Uint8Array): string | null {
  try {
    return utf8.decode(body);
  } catch {
    return null;
  }
}

/**
 * Builds the metrics server: request limits (431, 413), the method check (405) and, with a
 * token, {@linkcode bearerAuth} on `/metrics` are middleware mounted with `app.use`, in that
 * order; the routes only answer.
 *
 * @param options The source to serve, an optional bearer token, request limits and logging.
 * @returns A hono app; pass `app.fetch` to a server, or mount it in another hono app.
 * @throws {TypeError} If the token cannot be a bearer token or a limit is negative.
 *
 * @example Serve a live registry
 * ```ts
 * import { createApp } from "./app.ts";
 * import assert from "node:assert/strict";
 *
 * const app = createApp({ source: () => "kvh_quarantined_buffers 0\n" });
 * const res = await app.request("/metrics");
 * assert.equal(res.status, 200);
 * assert.match(await res.text(), /^kvh_quarantined_buffers 0\n/);
 * ```
 */
export function createApp(options: CreateAppOptions): Hono {
  const {
    token,
    maxHeaderBytes = 8192,
    maxBodyBytes = 1024,
    selfMetrics = true,
    selfMetricsMaxAgeMs = 100,
    log = () => {},
  } = options;
  if (!(maxHeaderBytes >= 0) || !(maxBodyBytes >= 0)) {
    throw new TypeError(
      `Invalid request limits: expected non-negative numbers, got ${maxHeaderBytes} and ${maxBodyBytes}`,
    );
  }
  const source = typeof options.source === "function"
    ? textSource(options.source, log)
    : options.source;
  const counts: ExporterCounts = {
    ok: 0,
    unavailable: 0,
    unauthorized: 0,
    bodyTooLarge: 0,
    headersTooLarge: 0,
  };
  let rendered: Rendered | null = null;

  function respond(snapshot: ExpositionSnapshot, acceptEncoding: string | null): Response {
    if (!snapshot.ok) {
      counts.unavailable++;
      return new Response(`${snapshot.reason}\n`, { status: 503, headers: TEXT_HEADERS });
    }
    counts.ok++;
    const now = performance.now();
    let current = rendered;
    if (
      current === null || current.body !== snapshot.body || now - current.at >= selfMetricsMaxAgeMs
    ) {
      current = rendered = render(snapshot.body, current, now);
    }
    if (acceptsGzip(acceptEncoding)) {
      current.gzipOut ??= gzipSync(current.out) as Uint8Array<ArrayBuffer>;
      return new Response(current.gzipOut, { headers: METRICS_GZIP_HEADERS });
    }
    return new Response(current.out, { headers: METRICS_HEADERS });
  }

  function render(
    body: Uint8Array<ArrayBuffer>,
    previous: Rendered | null,
    now: number,
  ): Rendered {
    const text = previous?.body === body ? previous.text : decodeUtf8(body);
    const needsNewline = body.length > 0 && body[body.length - 1] !== 0x0a;
    const tail = selfMetrics
      ? (needsNewline ? "\n" : "") + renderSelfMetrics(counts, source.stats?.() ?? {})
      : "";
    let out: string | Uint8Array<ArrayBuffer>;
    if (text !== null) {
      out = text + tail;
    } else {
      const tailBytes = encoder.encode(tail);
      out = new Uint8Array(body.length + tailBytes.length);
      out.set(body, 0);
      out.set(tailBytes, body.length);
    }
    return { body, text, at: now, out, gzipOut: null };
  }

  const app = new Hono();
  app.use(requestLimits(maxHeaderBytes, maxBodyBytes, counts));
  app.use(function methods(c, next) {
    // Only GET and HEAD are served, on every path: anything else is 405, not 404.
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    return Promise.resolve(
      new Response("Method Not Allowed\n", { status: 405, headers: NOT_ALLOWED_HEADERS }),
    );
  });
  if (token !== undefined) {
    app.use("/metrics", bearerAuth({ token, onReject: () => counts.unauthorized++ }));
  }
  app.get("/metrics", (c): Response | Promise<Response> => {
    const acceptEncoding = c.req.raw.headers.get("accept-encoding");
    const snapshot = source.snapshot();
    return snapshot instanceof Promise
      ? snapshot.then((s) => respond(s, acceptEncoding))
      : respond(snapshot, acceptEncoding);
  });
  app.get("/healthz", () => new Response("ok\n", { headers: TEXT_HEADERS }));
  app.notFound(() => new Response("Not Found\n", { status: 404, headers: TEXT_HEADERS }));
  app.onError((error, c) => {
    if (error instanceof HTTPException) return error.getResponse();
    log(`Internal error serving ${c.req.method} ${c.req.path}: ${firstLine(error)}`);
    return new Response("Internal Server Error\n", { status: 500, headers: TEXT_HEADERS });
  });
  return app;
}

/**
 * Middleware answering 431 for a request line plus headers above `maxHeaderBytes` and 413 for a
 * body above `maxBodyBytes` or of unknown length (the server never reads one), counting both.
 */
function requestLimits(
  maxHeaderBytes: number,
  maxBodyBytes: number,
  counts: ExporterCounts,
): MiddlewareHandler {
  return function requestLimits(c, next) {
    const raw = c.req.raw;
    let size = raw.url.length;
    let length: string | null = null;
    let chunked = false;
    for (const [name, value] of raw.headers) {
      size += name.length + value.length + 4;
      if (name === "content-length") length = value;
      else if (name === "transfer-encoding") chunked = true;
    }
    if (size > maxHeaderBytes) {
      counts.headersTooLarge++;
      return Promise.resolve(
        new Response("Request Header Fields Too Large\n", { status: 431, headers: TEXT_HEADERS }),
      );
    }
    // Headers, not `raw.body`, decide: a server may hand a GET no body stream even when the
    // client sent one.
    if (
      chunked || (length === null && raw.body !== null) ||
      (length !== null && (!/^[0-9]{1,15}$/.test(length) || Number(length) > maxBodyBytes))
    ) {
      counts.bodyTooLarge++;
      return Promise.resolve(
        new Response("Content Too Large\n", { status: 413, headers: TEXT_HEADERS }),
      );
    }
    return next();
  };
}

/**
 * Whether an `Accept-Encoding` value admits gzip (RFC 9110 §12.5.3): `gzip` or `*` listed
 * without `q=0`, and gzip not refused explicitly when `*` is what admits it.
 */
export function acceptsGzip(header: string | null): boolean {
  if (header === null) return false;
  let star = false;
  for (const part of header.split(",")) {
    const [coding = "", ...params] = part.split(";");
    const name = coding.trim().toLowerCase();
    if (name !== "gzip" && name !== "x-gzip" && name !== "*") continue;
    const q = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith("q="));
    const accepted = q === undefined || Number(q.slice(2)) > 0;
    if (name === "*") star = accepted;
    else return accepted;
  }
  return star;
}

/** Wraps a text function as a source; re-encodes only when the text changes. */
function textSource(
  read: () => string | Promise<string>,
  log: (line: string) => void,
): MetricsSource {
  let lastText: string | undefined;
  let lastBody = new Uint8Array(0);
  let failures = 0;
  function accept(text: string): ExpositionSnapshot {
    if (text !== lastText) {
      lastText = text;
      lastBody = encoder.encode(text);
    }
    return { ok: true, body: lastBody };
  }
  function fail(error: unknown): ExpositionSnapshot {
    failures++;
    log(`Cannot read live metrics: ${firstLine(error)}`);
    return { ok: false, reason: "Metrics source failed" };
  }
  return {
    snapshot() {
      try {
        const text = read();
        return typeof text === "string" ? accept(text) : text.then(accept, fail);
      } catch (error) {
        return fail(error);
      }
    },
    stats: () => ({ reloadFailures: failures }),
  };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? message;
}
