/**
 * The metrics server: a hono app serving a Prometheus textfile (or a live registry) from
 * memory, the textfile source that reloads on change, the bearer-token middleware, and the
 * HTTP/1.1 accept loop that serves it.
 *
 * @module
 */
export { createApp, type CreateAppOptions, PROMETHEUS_CONTENT_TYPE } from "./app.ts";
export { bearerAuth, type BearerAuthOptions } from "./bearer_auth.ts";
export { FileMetricsSource, type FileMetricsSourceOptions } from "./metrics_source.ts";
export {
  defaultMaxConnections,
  type Http1Listener,
  type Http1Server,
  readOpenFileLimit,
  serveHttp1,
  type ServeHttp1Options,
} from "./serve_http1.ts";
export type { ExpositionSnapshot, MetricsSource, MetricsSourceStats } from "./types.ts";
