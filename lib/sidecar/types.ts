/**
 * Wire shapes of the sidecar protocol (docs/protocol.md, DESIGN.md §7b): one JSON object per
 * line, requests `{"v":1,"id":…,"op":…}`, replies `{"v":1,"id":…,"ok":…}`. The field names are
 * fixed: clients, the vLLM connector and outside tests depend on them.
 *
 * @module
 */

/** Protocol version carried in every envelope's `v`. */
export const PROTOCOL_VERSION = 1;

/** Operations a client may send. */
export type SidecarOp = "hello" | "register_pool" | "assign" | "release" | "stats" | "bye";

/**
 * Error codes of `ok:false` replies (docs/protocol.md lists each with an example). After any of
 * them except `quarantined` nothing changed on kvh's side.
 */
export type SidecarErrorCode =
  | "malformed_json"
  | "invalid_request"
  | "unsupported_version"
  | "unknown_op"
  | "line_too_long"
  | "invalid_layout"
  | "pool_exists"
  | "pool_refused"
  | "pool_in_use"
  | "unsupported_handle"
  | "device_unavailable"
  | "unknown_pool"
  | "out_of_range"
  | "unknown_handle"
  | "already_released"
  | "release_in_progress"
  | "not_assigned"
  | "quarantined"
  | "limit_exceeded"
  | "shutting_down";

/**
 * Why blocks were quarantined (`error.reason` of a `quarantined` reply, `reason` of the
 * forensic log's `quarantine` event).
 */
export type SidecarQuarantineReason =
  | "cross_tenant_assign"
  | "already_quarantined"
  | "pool_gone"
  | "pool_short"
  | "scrub_failed"
  | "coverage_below_threshold"
  | "audit_failed"
  | "client_disconnected"
  | "shutdown";

/** One region of a block layout: block `b` occupies `[offset + b × block_stride, + block_bytes)`. */
export interface Region {
  /** Byte offset of block 0 of this region inside the pool. */
  offset: number;
  /** Bytes from one block to the next in this region. */
  block_stride: number;
  /** Bytes of one block in this region. */
  block_bytes: number;
}

/** Limits the daemon announces in its `hello` reply and enforces. */
export interface SidecarLimits {
  /** Longest request line, in bytes. */
  max_line_bytes: number;
  /** Most requests in one batch (a JSON array line). */
  max_batch: number;
  /** Most pools one connection may register. */
  max_pools: number;
  /** Most regions in one layout. */
  max_regions: number;
  /** Most blocks in one pool. */
  max_blocks: number;
  /** Most block ids in one assign or release. */
  max_blocks_per_request: number;
  /** Most lines of one connection being worked on; kvh stops reading until one is answered. */
  max_in_flight: number;
}

/** Default limits. */
export const DEFAULT_LIMITS: Readonly<SidecarLimits> = Object.freeze({
  max_line_bytes: 16 << 20,
  max_batch: 1024,
  max_pools: 4096,
  max_regions: 1024,
  max_blocks: 1 << 24,
  max_blocks_per_request: 1 << 20,
  max_in_flight: 1024,
});

/** The `error` member of an `ok:false` reply. */
export interface SidecarError {
  /** Machine-readable code. */
  code: SidecarErrorCode;
  /** One human-readable sentence. */
  message: string;
  /** With `quarantined`: why. */
  reason?: SidecarQuarantineReason;
  /** With `quarantined`: the block ids the engine must never reuse. */
  blocks?: number[];
}

/** A reply envelope. */
export interface SidecarReply {
  /** Protocol version. */
  v: number;
  /** The request's id, or null when it could not be read. */
  id: number | string | null;
  /** Whether the request succeeded. */
  ok: boolean;
  /** On failure. */
  error?: SidecarError;
  /** Result fields of the operation. */
  [field: string]: unknown;
}

/** Result of a successful `release`. */
export interface ReleaseResult {
  /** Share of the scrubbed bytes read back as zero, in percent. */
  coverage_pct: number;
  /** Bytes zeroed and read back. */
  bytes: number;
  /** Wall time of checks, zeroing, read-back and log append, in milliseconds. */
  duration_ms: number;
  /** The handle released (a release by block ids gets one of its own). */
  handle: string;
  /** Blocks scrubbed (the engine may reuse them now). */
  blocks: number[];
  /** Blocks left out because another live handle of the same tenant still holds them. */
  shared: number[];
  /**
   * Blocks scrubbed that must still never be reused: another tenant was refused them while
   * this handle held them.
   */
  quarantined: number[];
}

/** Counters of the `stats` reply. */
export interface SidecarStats {
  /** Connections open now. */
  connections: number;
  /** Pools registered on this connection. */
  pools: number;
  /** Blocks held by live handles (dirty), daemon-wide. */
  assigned_blocks: number;
  /** Blocks quarantined, daemon-wide. */
  quarantined_blocks: number;
  /** Releases acknowledged, daemon-wide. */
  releases: number;
  /** Bytes zeroed and read back, daemon-wide. */
  scrubbed_bytes: number;
  /** Requests answered with an error, daemon-wide. */
  errors: number;
}
