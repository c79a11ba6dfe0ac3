/**
 * The metrics server: a hono app serving a Prometheus textfile (or a live registry) from
 * memory, the textfile source that reloads on change, and the bearer-token middleware.
 *
 * @module
 */
export { createApp, type CreateAppOptions, PROMETHEUS_CONTENT_TYPE } from "./app.ts";
export { bearerAuth, type BearerAuthOptions } from "./bearer_auth.ts";
export { FileMetricsSource, type FileMetricsSourceOptions } from "./metrics_source.ts";
export type { ExpositionSnapshot, MetricsSource, MetricsSourceStats } from "./types.ts";
