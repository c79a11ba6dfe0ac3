/**
 * Data shapes of the metrics server: what a metrics source hands the app on each scrape, and the
 * counters a source keeps about itself for the exporter's self-metrics.
 *
 * @module
 */

/** The exposition a source has right now: its bytes, or why it has none. */
export type ExpositionSnapshot =
  | {
    /** The source has an exposition. */
    ok: true;
    /**
     * Prometheus text exposition bytes, served unchanged. A source returns the same array
     * object until its content changes, so the app can reuse what it derived from it.
     */
    body: Uint8Array<ArrayBuffer>;
  }
  | {
    /** The source has nothing to serve. */
    ok: false;
    /** Short reason for the 503 body, e.g. `Metrics file not found`; never a path or secret. */
    reason: string;
  };

/** Counters and gauges a source reports about itself; all optional. */
export interface MetricsSourceStats {
  /** Successful (re)loads since the source started. */
  reloads?: number;
  /** Failed (re)loads since the source started. */
  reloadFailures?: number;
  /** Modification time of the content being served, ms since the epoch. */
  mtimeMs?: number;
}

/** Anything the app can scrape: the textfile watcher, or a live registry in the same process. */
export interface MetricsSource {
  /** The current exposition; synchronous when it is cached in memory. */
  snapshot(): ExpositionSnapshot | Promise<ExpositionSnapshot>;
  /** Counters for the exporter's self-metrics. */
  stats?(): MetricsSourceStats;
}
