/**
 * The sidecar: `kvh trace --listen` scrubs memory owned by a serving engine (DESIGN.md §7b,
 * docs/protocol.md).
 *
 * @module
 */
export {
  type BlockLayout,
  blockRanges,
  type ByteRange,
  checkBlockIds,
  LayoutError,
  validateBlockLayout,
} from "./block_layout.ts";
export {
  type CpuPoolOptions,
  defaultPoolFiles,
  openCpuPool,
  PoolRefusedError,
} from "./cpu_pool.ts";
export { type CudaPoolOpenerOptions, openCudaPoolOpener } from "./cuda_pool.ts";
export {
  type CudaPoolRequest,
  type EnginePool,
  type PoolScrubResult,
  PoolUnavailableError,
} from "./engine_pool.ts";
export { loadNativePoolFiles, NATIVE_POOL_LIBRARY_NAME } from "./native_pool.ts";
export { DENO_POOL_FILES, type PoolFile, type PoolFiles, type PoolStat } from "./pool_files.ts";
export { SidecarRequestError } from "./request_error.ts";
export { SidecarClient, SidecarReplyError } from "./sidecar_client.ts";
export { SidecarDaemon, type SidecarDaemonOptions, type StopResult } from "./sidecar_daemon.ts";
export { SidecarSession } from "./sidecar_session.ts";
export * from "./types.ts";
