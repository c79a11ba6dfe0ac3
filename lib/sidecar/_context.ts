/**
 * What a connection's session needs from the daemon that owns it: shared settings, the log,
 * the metrics and the daemon-wide pool identities. Internal to lib/sidecar.
 *
 * @module
 */
import type { AuditSink } from "../forensic/types.ts";
import type { MetricsCollector } from "../metrics/collector.ts";
import type { CudaPoolRequest, EnginePool } from "./engine_pool.ts";
import type { SidecarLimits, SidecarStats } from "./types.ts";

/** Counters kept daemon-wide. */
export interface DaemonCounters {
  assignedBlocks: number;
  assignedEver: number;
  quarantinedBlocks: number;
  releasedBlocks: number;
  releases: number;
  scrubbedBytes: number;
  errors: number;
  abandonedReleases: number;
}

/** The daemon as its sessions see it. */
export interface DaemonContext {
  readonly audit: AuditSink;
  readonly metrics: MetricsCollector;
  readonly limits: SidecarLimits;
  readonly thresholdPct: number;
  readonly doublePass: boolean;
  readonly devices: readonly string[];
  readonly counters: DaemonCounters;
  openCpuPool(path: string, bytes: number): Promise<EnginePool>;
  openCudaPool?: (request: CudaPoolRequest) => Promise<EnginePool>;
  /** Claims a pool identity for a session; false when another session holds it. */
  claimIdentity(identity: string, owner: object): boolean;
  releaseIdentity(identity: string, owner: object): void;
  isShuttingDown(): boolean;
  /** Called after every change the metrics show. */
  changed(): void;
  stats(pools: number): SidecarStats;
}
