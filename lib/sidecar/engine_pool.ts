/**
 * What the daemon needs from a registered pool, whatever memory backs it.
 *
 * @module
 */
import type { ByteRange } from "./block_layout.ts";

/** A `register_pool` request for CUDA memory, as the opener receives it. */
export interface CudaPoolRequest {
  /** `cudaIpcMemHandle_t` bytes (64). */
  ipcHandle: Uint8Array;
  /** UUID of the GPU holding the allocation (`GPU-…` or bare hex). */
  gpuUuid: string;
  /** Offset of the pool inside the allocation. */
  offset: number;
  /** Bytes of the pool. */
  bytes: number;
}

/** Outcome of scrubbing ranges: bytes read back, and how many of them were not zero. */
export interface PoolScrubResult {
  /** Bytes read back. */
  checkedBytes: number;
  /** Bytes read back that were not zero. */
  nonZeroBytes: number;
}

/** Thrown by {@linkcode EnginePool.scrub} when the memory is not there any more. */
export class PoolUnavailableError extends Error {
  /** `pool_gone` or `pool_short`. */
  readonly reason: "pool_gone" | "pool_short";

  /**
   * Creates the error.
   *
   * @param reason Why the pool cannot be scrubbed.
   * @param message What was found.
   */
  constructor(reason: "pool_gone" | "pool_short", message: string) {
    super(message);
    this.name = "PoolUnavailableError";
    this.reason = reason;
  }
}

/** Engine memory kvh scrubs in place. */
export interface EnginePool {
  /** `cpu` or `cuda`. */
  readonly device: "cpu" | "cuda";
  /** Identity of the memory (device and inode, or GPU and handle), unique daemon-wide. */
  readonly identity: string;
  /**
   * Zeroes every range (twice with `doublePass`), then reads every byte back. Ranges were
   * checked against the registered size; the pool re-checks that the memory is still that
   * large before the first write.
   */
  scrub(ranges: readonly ByteRange[], doublePass: boolean): Promise<PoolScrubResult>;
  /** Releases kvh's handle on the memory (never the engine's memory itself). */
  close(): Promise<void>;
}
