/**
 * Anomaly detection over streams of values — what the Python tool's activation logger does
 * (reference §8), without its two flaws (§12 W10): each value is scored against the baseline
 * *before* it joins it (anomalies never join it), so a spike cannot hide itself, and anomalies
 * are never dropped by the
 * rate limit (suppressed ones are counted and reported with the next report).
 *
 * @module
 */

/** Summary of one observation: a tensor's statistics, or one value (mean = max = value). */
export interface ActivationStats {
  /** Mean of the observed values. */
  mean: number;
  /** Largest absolute value observed. */
  max: number;
}

/** Options of {@linkcode AnomalyMonitor}. */
export interface AnomalyMonitorOptions {
  /**
   * |mean − baseline mean| / baseline std above this is an anomaly.
   *
   * @default {6}
   */
  zThreshold?: number;
  /**
   * `max` above baseline mean + this × (baseline std, or |baseline mean| when the std is 0, or
   * 1) is an anomaly.
   *
   * @default {10}
   */
  maxFactor?: number;
  /**
   * Observations of a stream before it is scored (the baseline is meaningless before).
   *
   * @default {8}
   */
  minSamples?: number;
  /**
   * Shortest interval between two reports of one stream, in milliseconds; 0 reports every
   * anomaly.
   *
   * @default {1000}
   */
  minReportIntervalMs?: number;
  /**
   * Clock in milliseconds.
   *
   * @default {Date.now}
   */
  now?: () => number;
}

/** Outcome of {@linkcode AnomalyMonitor.observe}. */
export interface AnomalyVerdict {
  /** Whether this observation is anomalous. */
  anomalous: boolean;
  /** Which rule fired: `z` (mean far from the baseline) or `max` (outlier), else null. */
  rule: "z" | "max" | null;
  /** z-score of the mean against the baseline (0 while it has no spread). */
  z: number;
  /** Baseline mean before this observation. */
  baselineMean: number;
  /** Baseline standard deviation (sample, n − 1) before this observation. */
  baselineStd: number;
  /** Observations in the baseline before this one. */
  samples: number;
  /**
   * True when this anomaly should be written now; false when the stream reported less than
   * `minReportIntervalMs` ago (it is then counted in the next report's `suppressed`).
   */
  report: boolean;
  /** Anomalies of this stream held back since the last report. */
  suppressed: number;
}

interface Stream {
  count: number;
  mean: number;
  m2: number;
  lastReport: number;
  suppressed: number;
}

/**
 * Per-stream running statistics (Welford) with z-score and max-outlier rules.
 *
 * @example Usage
 * ```ts
 * import { AnomalyMonitor } from "./anomaly_monitor.ts";
 * import assert from "node:assert/strict";
 *
 * const monitor = new AnomalyMonitor({ minReportIntervalMs: 0 });
 * for (let i = 0; i < 20; i++) monitor.observe("scrub_ms", 1 + (i % 3) * 0.1);
 * const verdict = monitor.observe("scrub_ms", 10);
 * assert.equal(verdict.anomalous, true);
 * assert.equal(verdict.report, true);
 * ```
 */
export class AnomalyMonitor {
  #options: Required<AnomalyMonitorOptions>;
  #streams = new Map<string, Stream>();

  /**
   * Creates a monitor with no history.
   *
   * @param options Thresholds and rate limit.
   */
  constructor(options: AnomalyMonitorOptions = {}) {
    this.#options = {
      zThreshold: 6,
      maxFactor: 10,
      minSamples: 8,
      minReportIntervalMs: 1000,
      now: Date.now,
      ...options,
    };
  }

  /**
   * Scores one observation against the stream's baseline, then adds it to the baseline unless
   * it is anomalous.
   *
   * @param stream Stream name (a layer, or a scrub size class).
   * @param value One value, or a tensor's mean and max.
   * @returns The verdict.
   */
  observe(stream: string, value: number | ActivationStats): AnomalyVerdict {
    const { mean, max } = typeof value === "number" ? { mean: value, max: value } : value;
    if (!Number.isFinite(mean) || !Number.isFinite(max)) {
      throw new RangeError(`Invalid observation of ${stream}: values must be finite`);
    }
    let state = this.#streams.get(stream);
    if (state === undefined) {
      state = { count: 0, mean: 0, m2: 0, lastReport: -Infinity, suppressed: 0 };
      this.#streams.set(stream, state);
    }
    const { zThreshold, maxFactor, minSamples, minReportIntervalMs } = this.#options;
    const baselineMean = state.mean;
    const baselineStd = state.count > 1 ? Math.sqrt(state.m2 / (state.count - 1)) : 0;
    const samples = state.count;
    let rule: AnomalyVerdict["rule"] = null;
    let z = 0;
    if (samples >= minSamples) {
      z = baselineStd > 0 ? Math.abs(mean - baselineMean) / baselineStd : 0;
      const spread = baselineStd || Math.abs(baselineMean) || 1;
      if (z > zThreshold) rule = "z";
      else if (max > baselineMean + maxFactor * spread) rule = "max";
    }
    const anomalous = rule !== null;
    // Anomalies stay out of the baseline, so a burst of them cannot make itself normal.
    if (!anomalous) {
      state.count++;
      const delta = mean - state.mean;
      state.mean += delta / state.count;
      state.m2 += delta * (mean - state.mean);
    }
    let report = false;
    let suppressed = 0;
    if (anomalous) {
      const now = this.#options.now();
      if (now - state.lastReport >= minReportIntervalMs) {
        report = true;
        suppressed = state.suppressed;
        state.suppressed = 0;
        state.lastReport = now;
      } else {
        state.suppressed++;
        suppressed = state.suppressed;
      }
    }
    return { anomalous, rule, z, baselineMean, baselineStd, samples, report, suppressed };
  }
}
