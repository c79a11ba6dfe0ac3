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
import { bearerCheck } from "./bearer_auth.ts";
import { appendSelfMetrics, type ExporterCounts } from "./_self_metrics.ts";
import { type GzipPrefix, gzipPrefix, gzipWithTail } from "./_gzip.ts";
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
   * Receives one line per unexpected error (the client only sees a bare 500).
   *
   * @default {() => {}}
   */
  log?: (line: string) => void;
}

const TEXT_HEADERS = { "content-type": "text/plain; charset=utf-8" } as const;
const METRICS_HEADERS = {
  "content-type": PROMETHEUS_CONTENT_TYPE,
  "vary": "accept-encoding",
} as const;
const METRICS_GZIP_HEADERS = { ...METRICS_HEADERS, "content-encoding": "gzip" } as const;
const NOT_ALLOWED_HEADERS = { ...TEXT_HEADERS, allow: "GET, HEAD" } as const;
const OTHER_METHODS = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
const EMPTY = new Uint8Array(0);

/** What the app derives once per distinct body: the gzip prefix and whether a newline is owed. */
interface Derived {
  body: Uint8Array<ArrayBuffer>;
  gzip: GzipPrefix | null;
  needsNewline: boolean;
}

/**
 * Builds the metrics server.
 *
 * Every route is one synchronous handler that applies the request limits and the bearer check
 * itself, instead of hono middleware: hono then answers without composing a promise chain,
 * which is most of its overhead per request.
 *
 * @param options The source to serve, an optional bearer token, request limits and logging.
 * @returns A hono app; pass `app.fetch` to `Deno.serve`, or mount it in another hono app.
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
  const authorize = token === undefined
    ? null
    : bearerCheck({ token, onReject: () => counts.unauthorized++ });
  let derived: Derived | null = null;

  function limits(raw: Request): Response | null {
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
      return new Response("Request Header Fields Too Large\n", {
        status: 431,
        headers: TEXT_HEADERS,
      });
    }
    // Headers, not `raw.body`, decide: Deno.serve hands a GET no body stream even when the
    // client sent one. A body of unknown length (chunked) counts as too large, since the
    // server never reads one and will not wait for one either.
    if (
      chunked || (length === null && raw.body !== null) ||
      (length !== null && (!/^[0-9]{1,15}$/.test(length) || Number(length) > maxBodyBytes))
    ) {
      counts.bodyTooLarge++;
      return new Response("Content Too Large\n", { status: 413, headers: TEXT_HEADERS });
    }
    return null;
  }

  function respond(snapshot: ExpositionSnapshot, acceptEncoding: string | null): Response {
    if (!snapshot.ok) {
      counts.unavailable++;
      return new Response(`${snapshot.reason}\n`, { status: 503, headers: TEXT_HEADERS });
    }
    counts.ok++;
    if (derived === null || derived.body !== snapshot.body) {
      const body = snapshot.body;
      derived = { body, gzip: null, needsNewline: body.length > 0 && body.at(-1) !== 0x0a };
    }
    const { body } = derived;
    const out = selfMetrics
      ? appendSelfMetrics(body, derived.needsNewline, counts, source.stats?.() ?? {})
      : body;
    if (acceptsGzip(acceptEncoding)) {
      derived.gzip ??= gzipPrefix(body);
      const tail = out === body ? EMPTY : out.subarray(body.length);
      return new Response(gzipWithTail(derived.gzip, tail), { headers: METRICS_GZIP_HEADERS });
    }
    return new Response(out, { headers: METRICS_HEADERS });
  }

  const app = new Hono();
  app.get("/metrics", (c): Response | Promise<Response> => {
    const raw = c.req.raw;
    const rejected = limits(raw) ?? authorize?.(raw.headers.get("authorization")) ?? null;
    if (rejected !== null) return rejected;
    const acceptEncoding = raw.headers.get("accept-encoding");
    const snapshot = source.snapshot();
    return snapshot instanceof Promise
      ? snapshot.then((s) => respond(s, acceptEncoding))
      : respond(snapshot, acceptEncoding);
  });
  app.get("/healthz", (c) => limits(c.req.raw) ?? new Response("ok\n", { headers: TEXT_HEADERS }));
  app.on(OTHER_METHODS, ["/metrics", "/healthz"], (c) =>
    limits(c.req.raw) ??
      new Response("Method Not Allowed\n", { status: 405, headers: NOT_ALLOWED_HEADERS }));
  app.notFound((c) =>
    limits(c.req.raw) ?? new Response("Not Found\n", { status: 404, headers: TEXT_HEADERS })
  );
  app.onError((error, c) => {
    if (error instanceof HTTPException) return error.getResponse();
    log(`Internal error serving ${c.req.method} ${c.req.path}: ${firstLine(error)}`);
    return new Response("Internal Server Error\n", { status: 500, headers: TEXT_HEADERS });
  });
  return app;
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
  let lastBody = EMPTY;
  let failures = 0;
  function accept(text: string): ExpositionSnapshot {
    if (text !== lastText) {
      lastText = text;
      lastBody = new TextEncoder().encode(text);
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
