/**
 * One engine connection: its pools (invisible to other connections), its handles, and the
 * rules of DESIGN.md §7b. Blocks a handle holds are dirty until a release is acknowledged; a
 * block assigned to another tenant before that is refused and quarantined; anything left
 * unacknowledged when the connection ends is quarantined in the log.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import { newHandle, validateIdentifier } from "../tracer/identifiers.ts";
import { InvalidIdentifierError } from "../tracer/errors.ts";
import type { PolicyName, QuarantineReason } from "../tracer/types.ts";
import {
  type BlockLayout,
  blockRanges,
  checkBlockIds,
  LayoutError,
  validateBlockLayout,
} from "./block_layout.ts";
import type { DaemonContext } from "./_context.ts";
import { type CudaPoolRequest, type EnginePool, PoolUnavailableError } from "./engine_pool.ts";
import { SidecarRequestError } from "./request_error.ts";
import { PROTOCOL_VERSION, type ReleaseResult, type SidecarQuarantineReason } from "./types.ts";

type Fields = Record<string, unknown>;

interface PoolState {
  id: string;
  pool: EnginePool;
  layout: BlockLayout;
  /** Live handles holding each dirty block. */
  holders: Map<number, number>;
  /** Tenant of each dirty block. */
  tenants: Map<number, string>;
  scrubbing: Set<number>;
  quarantined: Set<number>;
}

interface Handle {
  id: string;
  pool: PoolState;
  blocks: number[];
  tenantId: string;
  requestId: string;
  modelId: string;
  releasing: boolean;
}

// A released handle's id is remembered for a while so a second release is told so; past this
// many, the oldest answer `unknown_handle` instead (also an error that changes nothing).
const RELEASED_MEMORY = 65536;

// A release's result carries its handle under this key, for undelivered(): JSON.stringify leaves
// symbol-keyed members out, so the reply on the wire is unchanged. The ids of released handles
// are then all that stays remembered: a whole handle kept per release (its blocks, its request
// id) was the bulk of what the daemon's young-generation collections copy and promote.
const RELEASED_HANDLE = Symbol("released handle");

// The tracer's quarantine labels the metrics know, and the policy each reason breaks.
const METRIC_REASON: Record<SidecarQuarantineReason, [QuarantineReason, PolicyName | null]> = {
  cross_tenant_assign: ["unverified_cross_tenant", "cross_tenant"],
  already_quarantined: ["operator", null],
  pool_gone: ["verification_failed", "coverage"],
  pool_short: ["verification_failed", "coverage"],
  scrub_failed: ["verification_failed", "coverage"],
  coverage_below_threshold: ["verification_failed", "coverage"],
  audit_failed: ["audit_failed", null],
  client_disconnected: ["operator", null],
  shutdown: ["operator", null],
};

// The block lists below are built only when they are not empty (undefined otherwise): the
// checks of assign and release find nothing nearly always. Helpers rather than inline filters
// also keep the pool and tenant out of closures, which would cost every request a context.

// The blocks that are in the set.
function blocksIn(blocks: readonly number[], set: ReadonlySet<number>): number[] | undefined {
  let found: number[] | undefined;
  if (set.size === 0) return found;
  for (const b of blocks) if (set.has(b)) (found ??= []).push(b);
  return found;
}

// The blocks another tenant's bytes may still be in.
function foreignBlocks(
  blocks: readonly number[],
  tenants: ReadonlyMap<number, string>,
  tenantId: string,
): number[] | undefined {
  let found: number[] | undefined;
  for (const b of blocks) {
    const tenant = tenants.get(b);
    if (tenant !== undefined && tenant !== tenantId) (found ??= []).push(b);
  }
  return found;
}

// The blocks another live handle holds too.
function heldElsewhere(
  blocks: readonly number[],
  holders: ReadonlyMap<number, number>,
): number[] | undefined {
  let found: number[] | undefined;
  for (const b of blocks) if (holders.get(b)! > 1) (found ??= []).push(b);
  return found;
}

function without(blocks: readonly number[], left: readonly number[]): number[] {
  return blocks.filter((b) => !left.includes(b));
}

function invalid(message: string): SidecarRequestError {
  return new SidecarRequestError("invalid_request", message);
}

function identifier(field: string, value: unknown): string {
  try {
    return validateIdentifier(field, value);
  } catch (error) {
    if (error instanceof InvalidIdentifierError) throw invalid(error.message);
    throw error;
  }
}

function blockIds(layout: BlockLayout, ids: unknown, max: number): number[] {
  try {
    return checkBlockIds(layout, ids, max);
  } catch (error) {
    if (error instanceof LayoutError) {
      throw new SidecarRequestError("out_of_range", error.message);
    }
    throw error;
  }
}

function decodeBase64(text: unknown): Uint8Array {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw invalid("Invalid ipc_handle: expected base64");
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** The state of one connection. Requests come in through {@linkcode SidecarSession.handle}. */
export class SidecarSession {
  #ctx: DaemonContext;
  #pools = new Map<string, PoolState>();
  #handles = new Map<string, Handle>();
  #released = new Set<string>();
  #engine: Fields = {};
  #closed = false;

  /**
   * Creates a session.
   *
   * @param ctx The daemon.
   */
  constructor(ctx: DaemonContext) {
    this.#ctx = ctx;
  }

  /**
   * Runs one request. Validation and state changes happen before the first await, so requests
   * started in order take effect in order even when their log appends overlap.
   *
   * @param op The operation.
   * @param request The request object.
   * @returns The reply's result fields.
   * @throws {SidecarRequestError} For an `ok:false` reply.
   */
  handle(op: string, request: Fields): Promise<Fields> {
    if (this.#ctx.isShuttingDown() && op !== "bye" && op !== "stats") {
      return Promise.reject(
        new SidecarRequestError(
          "shutting_down",
          "The daemon is stopping: no new requests are taken",
        ),
      );
    }
    switch (op) {
      case "hello":
        return Promise.resolve(this.#hello(request));
      case "register_pool":
        return this.#registerPool(request);
      case "assign":
        return this.#assign(request);
      case "release":
        return this.#release(request);
      case "stats":
        return Promise.resolve({ ...this.#ctx.stats(this.#pools.size) });
      case "bye":
        return Promise.resolve({});
      default:
        return Promise.reject(
          new SidecarRequestError("unknown_op", `Unknown op ${JSON.stringify(op)}`),
        );
    }
  }

  #hello(request: Fields): Fields {
    this.#engine = {
      engine: typeof request.engine === "string" ? request.engine.slice(0, 256) : undefined,
      engine_pid: Number.isSafeInteger(request.pid) ? request.pid : undefined,
    };
    return {
      protocol: PROTOCOL_VERSION,
      devices: [...this.#ctx.devices],
      limits: { ...this.#ctx.limits },
      coverage_threshold_pct: this.#ctx.thresholdPct,
      double_pass: this.#ctx.doublePass,
    };
  }

  async #registerPool(request: Fields): Promise<Fields> {
    const id = identifier("pool", request.pool);
    if (this.#pools.has(id)) {
      throw new SidecarRequestError("pool_exists", `Pool ${id} is already registered`);
    }
    if (this.#pools.size >= this.#ctx.limits.max_pools) {
      throw new SidecarRequestError(
        "limit_exceeded",
        `A connection may register at most ${this.#ctx.limits.max_pools} pools`,
      );
    }
    let layout: BlockLayout;
    try {
      layout = validateBlockLayout(
        request.bytes,
        request.blocks,
        request.regions,
        this.#ctx.limits.max_regions,
      );
    } catch (error) {
      if (error instanceof LayoutError) {
        throw new SidecarRequestError("invalid_layout", error.message);
      }
      throw error;
    }
    if (layout.blocks > this.#ctx.limits.max_blocks) {
      throw new SidecarRequestError(
        "limit_exceeded",
        `A pool may have at most ${this.#ctx.limits.max_blocks} blocks`,
      );
    }
    let pool: EnginePool;
    try {
      pool = await this.#openPool(request, layout);
    } catch (error) {
      if (error instanceof SidecarRequestError) throw error;
      const code = error instanceof KvhError && error.code === "device_unavailable"
        ? "device_unavailable"
        : "pool_refused";
      throw new SidecarRequestError(code, `Pool ${id}: ${(error as Error).message}`);
    }
    if (this.#closed || this.#pools.has(id) || !this.#ctx.claimIdentity(pool.identity, this)) {
      await pool.close();
      if (this.#pools.has(id)) {
        throw new SidecarRequestError("pool_exists", `Pool ${id} is already registered`);
      }
      throw new SidecarRequestError(
        "pool_in_use",
        `Pool ${id}: this memory is registered by another connection`,
      );
    }
    const state: PoolState = {
      id,
      pool,
      layout,
      holders: new Map(),
      tenants: new Map(),
      scrubbing: new Set(),
      quarantined: new Set(),
    };
    this.#pools.set(id, state);
    await this.#ctx.audit.append("pool_register", {
      ...this.#engine,
      pool: id,
      device: pool.device,
      path: pool.device === "cpu" ? request.path : undefined,
      gpu_uuid: pool.device === "cuda" ? request.gpu_uuid : undefined,
      nbytes: layout.bytes,
      blocks: layout.blocks,
      regions: layout.regions.length,
      block_nbytes: layout.blockBytes,
    }).catch((error) => {
      this.#pools.delete(id);
      this.#ctx.releaseIdentity(pool.identity, this);
      void pool.close();
      throw new SidecarRequestError(
        "pool_refused",
        `Pool ${id}: the forensic log refused the registration: ${(error as Error).message}`,
      );
    });
    return { pool: id, blocks: layout.blocks, block_bytes: layout.blockBytes };
  }

  #openPool(request: Fields, layout: BlockLayout): Promise<EnginePool> {
    if (request.device === "cpu") {
      if (typeof request.path !== "string") throw invalid("Invalid path: expected a string");
      return this.#ctx.openCpuPool(request.path, layout.bytes);
    }
    if (request.device !== "cuda") {
      throw invalid(`Invalid device ${JSON.stringify(request.device)}: expected cpu or cuda`);
    }
    if (request.fd !== undefined || request.handle_type === "fd") {
      throw new SidecarRequestError(
        "unsupported_handle",
        "File-descriptor handles of VMM pools (expandable_segments) are not supported yet: " +
          "allocate the pool with cudaMalloc and pass its cudaIpcMemHandle",
      );
    }
    const ipcHandle = decodeBase64(request.ipc_handle);
    if (ipcHandle.length !== 64) {
      throw invalid(`Invalid ipc_handle: expected 64 bytes, got ${ipcHandle.length}`);
    }
    if (typeof request.gpu_uuid !== "string" || request.gpu_uuid.length > 64) {
      throw invalid("Invalid gpu_uuid: expected a string");
    }
    const offset = request.offset ?? 0;
    if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
      throw invalid("Invalid offset: expected a non-negative integer");
    }
    if (this.#ctx.openCudaPool === undefined) {
      throw new SidecarRequestError(
        "device_unavailable",
        "CUDA pools need the CUDA library and a GPU, and this kvh has neither",
      );
    }
    const cuda: CudaPoolRequest = {
      ipcHandle,
      gpuUuid: request.gpu_uuid,
      offset,
      bytes: layout.bytes,
    };
    return this.#ctx.openCudaPool(cuda);
  }

  #pool(id: unknown): PoolState {
    const pool = typeof id === "string" ? this.#pools.get(id) : undefined;
    if (pool === undefined) {
      throw new SidecarRequestError(
        "unknown_pool",
        `Unknown pool ${JSON.stringify(id)} on this connection`,
      );
    }
    return pool;
  }

  async #assign(request: Fields): Promise<Fields> {
    const pool = this.#pool(request.pool);
    const blocks = blockIds(pool.layout, request.blocks, this.#ctx.limits.max_blocks_per_request);
    const tenantId = identifier("tenant_id", request.tenant_id);
    const requestId = identifier("request_id", request.request_id);
    const modelId = identifier("model_id", request.model_id);
    const quarantined = blocksIn(blocks, pool.quarantined);
    if (quarantined !== undefined) {
      throw new SidecarRequestError(
        "quarantined",
        `Blocks ${quarantined.join(", ")} are quarantined and must never be reused`,
        { reason: "already_quarantined", blocks: quarantined },
      );
    }
    const busy = blocksIn(blocks, pool.scrubbing);
    if (busy !== undefined) {
      throw new SidecarRequestError(
        "release_in_progress",
        `Blocks ${busy.join(", ")} are being released and are not free yet`,
      );
    }
    const foreign = foreignBlocks(blocks, pool.tenants, tenantId);
    if (foreign !== undefined) {
      // Another tenant's bytes are still in these blocks: the engine's free path skipped kvh.
      await this.#quarantine(pool, foreign, "cross_tenant_assign", {
        tenantId,
        requestId,
        modelId,
      });
      throw new SidecarRequestError(
        "quarantined",
        `Blocks ${foreign.join(", ")} still hold another tenant's data: quarantined`,
        { reason: "cross_tenant_assign", blocks: foreign },
      );
    }
    const handle: Handle = {
      id: newHandle(),
      pool,
      blocks,
      tenantId,
      requestId,
      modelId,
      releasing: false,
    };
    for (const b of blocks) {
      pool.holders.set(b, (pool.holders.get(b) ?? 0) + 1);
      pool.tenants.set(b, tenantId);
      if (pool.holders.get(b) === 1) this.#ctx.counters.assignedBlocks++;
      this.#ctx.metrics.recordAllocation();
    }
    this.#ctx.counters.assignedEver += blocks.length;
    this.#handles.set(handle.id, handle);
    this.#ctx.changed();
    try {
      await this.#ctx.audit.append("assign", this.#fields(handle, blocks));
    } catch (error) {
      await this.#drop(handle, "audit_failed");
      throw new SidecarRequestError(
        "quarantined",
        `The forensic log refused the assignment: ${(error as Error).message}`,
        { reason: "audit_failed", blocks },
      );
    }
    return { handle: handle.id };
  }

  async #release(request: Fields): Promise<Fields> {
    const handle = request.handle !== undefined
      ? this.#byHandle(request.handle)
      : this.#byBlocks(request);
    const pool = handle.pool;
    handle.releasing = true;
    // Blocks another live handle of the same tenant still holds are left dirty for that one.
    // Usually there are none, and the handle's own list is the one to scrub.
    const sharedBlocks = heldElsewhere(handle.blocks, pool.holders);
    const scrub = sharedBlocks === undefined ? handle.blocks : without(handle.blocks, sharedBlocks);
    const shared = sharedBlocks ?? [];
    for (const b of scrub) pool.scrubbing.add(b);
    const started = performance.now();
    let checkedBytes = 0;
    let nonZeroBytes = 0;
    const ranges = blockRanges(pool.layout, scrub);
    try {
      ({ checkedBytes, nonZeroBytes } = await pool.pool.scrub(ranges, this.#ctx.doublePass));
    } catch (error) {
      const reason = error instanceof PoolUnavailableError ? error.reason : "scrub_failed";
      await this.#drop(handle, reason);
      throw new SidecarRequestError(
        "quarantined",
        `Release ${handle.id} not scrubbed: ${(error as Error).message}`,
        { reason, blocks: scrub },
      );
    }
    const bytes = pool.layout.blockBytes * scrub.length;
    const coveragePct = checkedBytes === 0 ? 100 : ((checkedBytes - nonZeroBytes) / checkedBytes) *
      100;
    const failed = coveragePct < this.#ctx.thresholdPct;
    const durationMs = performance.now() - started;
    this.#ctx.metrics.recordScrub({
      coveragePct,
      verified: true,
      durationMs,
      scrubbedBytes: bytes * (this.#ctx.doublePass ? 2 : 1),
    });
    // One literal with every member: the record's fields are read by the writer only.
    const fields = {
      ...this.#fields(handle, scrub),
      shared_blocks: sharedBlocks,
      coverage_pct: coveragePct,
      verified: true,
      verify_mode: "full",
      checked_bytes: checkedBytes,
      nonzero_bytes: nonZeroBytes,
      double_pass: this.#ctx.doublePass,
      duration_ms: durationMs,
    };
    try {
      await this.#ctx.audit.append("sanitize", fields, { critical: failed });
    } catch (error) {
      this.#ctx.metrics.recordAuditFailure(failed);
      await this.#drop(handle, "audit_failed");
      throw new SidecarRequestError(
        "quarantined",
        `Release ${handle.id}: the forensic log refused the scrub: ${(error as Error).message}`,
        { reason: "audit_failed", blocks: scrub },
      );
    }
    if (failed) {
      await this.#drop(handle, "coverage_below_threshold");
      throw new SidecarRequestError(
        "quarantined",
        `Release ${handle.id}: coverage ${
          coveragePct.toFixed(3)
        }% is below ${this.#ctx.thresholdPct}%`,
        { reason: "coverage_below_threshold", blocks: scrub },
      );
    }
    this.#retire(handle, scrub);
    // A block quarantined while this handle held it (another tenant was given it) is scrubbed
    // all the same, but stays out of circulation.
    const recalled = blocksIn(scrub, pool.quarantined);
    const quarantined = recalled ?? [];
    const freed = recalled === undefined ? scrub : without(scrub, recalled);
    for (const _ of freed) this.#ctx.metrics.recordFree();
    this.#ctx.counters.releases++;
    this.#ctx.counters.releasedBlocks += scrub.length;
    this.#ctx.counters.scrubbedBytes += bytes;
    this.#ctx.changed();
    return {
      coverage_pct: coveragePct,
      bytes,
      duration_ms: performance.now() - started,
      handle: handle.id,
      blocks: freed,
      shared,
      quarantined,
      [RELEASED_HANDLE]: handle,
    } satisfies ReleaseResult & { [RELEASED_HANDLE]: Handle };
  }

  #byHandle(id: unknown): Handle {
    if (typeof id !== "string") throw invalid("Invalid handle: expected a string");
    const handle = this.#handles.get(id);
    if (handle === undefined) {
      if (this.#released.has(id)) {
        throw new SidecarRequestError("already_released", `Handle ${id} was already released`);
      }
      throw new SidecarRequestError("unknown_handle", `Unknown handle ${id} on this connection`);
    }
    if (handle.releasing) {
      throw new SidecarRequestError(
        "release_in_progress",
        `Handle ${id} is already being released`,
      );
    }
    return handle;
  }

  // A release by block ids takes the blocks away from every live handle holding them, as one
  // handle of their tenant; all must belong to one tenant.
  #byBlocks(request: Fields): Handle {
    const pool = this.#pool(request.pool);
    const blocks = blockIds(pool.layout, request.blocks, this.#ctx.limits.max_blocks_per_request);
    const missing = blocks.filter((b) => !pool.holders.has(b) || pool.scrubbing.has(b));
    if (missing.length > 0) {
      throw new SidecarRequestError(
        "not_assigned",
        `Blocks ${missing.join(", ")} are not assigned (or already being released)`,
      );
    }
    const tenants = new Set(blocks.map((b) => pool.tenants.get(b)));
    if (tenants.size > 1) {
      throw invalid("Blocks of different tenants: release them separately");
    }
    const wanted = new Set(blocks);
    let owner: Handle | undefined;
    for (const handle of this.#handles.values()) {
      if (handle.pool !== pool || handle.releasing) continue;
      const kept = handle.blocks.filter((b) => !wanted.has(b));
      if (kept.length === handle.blocks.length) continue;
      owner ??= handle;
      for (const b of handle.blocks) if (wanted.has(b)) this.#unhold(pool, b);
      handle.blocks = kept;
      if (kept.length === 0) this.#handles.delete(handle.id);
    }
    const merged: Handle = { ...owner!, id: newHandle(), blocks, releasing: false };
    for (const b of blocks) {
      pool.holders.set(b, 1);
      pool.tenants.set(b, owner!.tenantId);
      this.#ctx.counters.assignedBlocks++;
    }
    this.#handles.set(merged.id, merged);
    return merged;
  }

  #unhold(pool: PoolState, block: number): void {
    const left = (pool.holders.get(block) ?? 1) - 1;
    if (left > 0) {
      pool.holders.set(block, left);
      return;
    }
    pool.holders.delete(block);
    pool.tenants.delete(block);
    this.#ctx.counters.assignedBlocks--;
  }

  #retire(handle: Handle, scrubbed: number[]): void {
    const pool = handle.pool;
    for (const b of handle.blocks) this.#unhold(pool, b);
    for (const b of scrubbed) pool.scrubbing.delete(b);
    this.#handles.delete(handle.id);
    this.#released.add(handle.id);
    if (this.#released.size > RELEASED_MEMORY) {
      this.#released.delete(this.#released.values().next().value!);
    }
  }

  // The handle's blocks leave circulation for good: released in kvh's books, quarantined in
  // the pool and the log. Blocks other handles still hold stay theirs.
  async #drop(handle: Handle, reason: SidecarQuarantineReason): Promise<void> {
    const pool = handle.pool;
    const only = handle.blocks.filter((b) => pool.holders.get(b) === 1);
    this.#retire(handle, handle.blocks);
    await this.#quarantine(pool, only, reason, handle, handle.id);
  }

  async #quarantine(
    pool: PoolState,
    blocks: number[],
    reason: SidecarQuarantineReason,
    owner: { tenantId: string; requestId: string; modelId: string },
    handle?: string,
  ): Promise<void> {
    const [metricReason, policy] = METRIC_REASON[reason];
    const fresh = blocks.filter((b) => !pool.quarantined.has(b));
    for (const b of fresh) {
      pool.quarantined.add(b);
      this.#ctx.metrics.recordQuarantine(metricReason);
      if (policy !== null) this.#ctx.metrics.recordPolicyViolation(policy);
    }
    this.#ctx.counters.quarantinedBlocks += fresh.length;
    this.#ctx.changed();
    if (fresh.length === 0) return;
    await this.#ctx.audit.append("quarantine", {
      handle,
      tenant_id: owner.tenantId,
      request_id: owner.requestId,
      model_id: owner.modelId,
      device: pool.pool.device,
      nbytes: pool.layout.blockBytes * fresh.length,
      pool: pool.id,
      blocks: fresh,
      reason: metricReason,
      policy: policy ?? undefined,
      detail: reason,
      scrubbed: false,
    }, { critical: true }).catch(() => {
      // The blocks are out of circulation already; the engine is told so in the reply.
      this.#ctx.metrics.recordAuditFailure(true);
    });
  }

  #fields(handle: Handle, blocks: number[]): Fields {
    return {
      handle: handle.id,
      tenant_id: handle.tenantId,
      request_id: handle.requestId,
      model_id: handle.modelId,
      device: handle.pool.pool.device,
      nbytes: handle.pool.layout.blockBytes * blocks.length,
      pool: handle.pool.id,
      blocks,
    };
  }

  /**
   * Called when the reply to a request could not be delivered (the engine went away): the
   * engine never learnt its blocks were clean, so they are quarantined in the log, as the
   * engine, failing secure, treats them.
   *
   * @param op The request's operation.
   * @param result The reply's result fields that were not delivered.
   * @returns When the log has the quarantine.
   */
  async undelivered(op: string, result: Fields): Promise<void> {
    const handle = (result as { [RELEASED_HANDLE]?: Handle })[RELEASED_HANDLE];
    if (op !== "release" || handle === undefined || !Array.isArray(result.blocks)) return;
    await this.#quarantine(
      handle.pool,
      result.blocks as number[],
      "client_disconnected",
      handle,
      handle.id,
    );
  }

  /**
   * Ends the session: every block a live handle still holds, and every block whose release
   * did not finish, is quarantined in the log, then kvh's handles on the pools are closed.
   *
   * @param reason `client_disconnected` or `shutdown`.
   * @returns When the log has the quarantines.
   */
  async close(reason: "client_disconnected" | "shutdown"): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const handle of [...this.#handles.values()]) {
      if (!handle.releasing) await this.#drop(handle, reason);
    }
    for (const pool of this.#pools.values()) {
      this.#ctx.releaseIdentity(pool.pool.identity, this);
      await pool.pool.close();
    }
  }
}
