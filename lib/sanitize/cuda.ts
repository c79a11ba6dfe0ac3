/**
 * The CUDA sanitizer: buffers in GPU memory, zeroed on a stream (cudaMemsetAsync or a
 * vectorised kernel) and verified by a kernel that counts non-zero bytes on the device; only the
 * 8-byte count comes back, asynchronously into pinned memory. A verification result is returned
 * only after the event recorded behind the count completed, so coverage is never attested
 * before the zeroing finished.
 *
 * @module
 */
import {
  check,
  CUDA_ERROR_NOT_READY,
  type CudaLibrary,
  type CudaSymbols,
  DEVICE_INFO_BYTES,
  KVH_CUDA_ERRORS,
  loadCudaLibrary,
  outPointer,
} from "../../ffi/cuda/binding.ts";
import { KvhError } from "../errors.ts";
import type { DeviceBuffer, Sanitizer, VerifyOptions, VerifyResult, ZeroOptions } from "./types.ts";
import { assertSameSize, OwnedBuffer, ownedBuffer } from "./_owned_buffer.ts";

/** How {@linkcode CudaSanitizer.zero} clears memory. */
export type CudaZeroMethod = "memset" | "kernel";

/** Options of {@linkcode CudaSanitizer.open}. */
export interface CudaSanitizerOptions {
  /**
   * Path of `libkvh_cuda.so` (the CLI resolves `KVH_CUDA_LIB`); otherwise next to the
   * executable, then `ffi/cuda/build/`.
   *
   * @default {undefined}
   */
  libraryPath?: string;
  /**
   * CUDA device ordinal.
   *
   * @default {0}
   */
  deviceIndex?: number;
  /**
   * `memset` (cudaMemsetAsync) or `kernel` (16-byte stores); `kvh sanitize-bench` measures both.
   *
   * @default {"memset"}
   */
  zeroMethod?: CudaZeroMethod;
}

/** Properties of the opened GPU. */
export interface CudaDeviceInfo {
  /** Device name, e.g. `NVIDIA H100 80GB HBM3`. */
  name: string;
  /** Global memory in bytes. */
  totalBytes: number;
  /** Compute capability, e.g. `9.0`. */
  computeCapability: string;
  /** Streaming multiprocessors. */
  multiprocessors: number;
  /** L2 cache in bytes. */
  l2CacheBytes: number;
  /** CUDA runtime version linked into the library, e.g. 13000. */
  runtimeVersion: number;
  /** Driver's CUDA version, e.g. 13000. */
  driverVersion: number;
}

/** One block of a paged pool for {@linkcode CudaSanitizer.zeroVerifyBlocks}. */
export interface PoolBlock {
  /** First byte of the block in the pool. */
  offset: number;
  /** Bytes in the block (> 0). */
  length: number;
}

/** Result of {@linkcode CudaSanitizer.zeroVerifyBlocks}. */
export interface BlocksResult {
  /** Bytes zeroed and verified. */
  checkedBytes: number;
  /** Non-zero bytes left over all blocks. */
  nonZeroBytes: number;
  /** Non-zero bytes left per block, in the order given. */
  perBlock: number[];
}

interface Handles {
  stream: Deno.PointerValue;
  event: Deno.PointerValue;
  deviceCounter: Deno.PointerValue;
  hostCount: Deno.PointerValue;
}

class CudaBuffer extends OwnedBuffer {
  readonly device = "cuda" as const;
  constructor(
    owner: CudaSanitizer,
    byteLength: number,
    readonly pointer: Deno.PointerValue,
    /** Base of another process's allocation opened by IPC: freeing closes it, never frees it. */
    readonly ipcBase: Deno.PointerValue = null,
  ) {
    super(owner, byteLength);
  }
}

const BLOCK_ERRORS: Record<number, string> = {
  [KVH_CUDA_ERRORS.blocksUnsorted]: "blocks are not sorted by offset",
  [KVH_CUDA_ERRORS.blocksOverlap]: "blocks overlap",
  [KVH_CUDA_ERRORS.blocksOutOfRange]: "a block lies outside the pool",
  [KVH_CUDA_ERRORS.blocksEmpty]: "a block has length 0",
  [KVH_CUDA_ERRORS.invalidArgument]: "the block list is empty",
};

/**
 * Zeroization on an NVIDIA GPU through `libkvh_cuda.so`.
 *
 * @example Scrub and verify a GPU buffer
 * ```ts ignore
 * import { CudaSanitizer } from "./cuda.ts";
 *
 * const sanitizer = await CudaSanitizer.open();
 * const buffer = await sanitizer.alloc(1 << 30);
 * await sanitizer.zero(buffer, { async: true });
 * await sanitizer.wait();
 * console.log(await sanitizer.verify(buffer)); // { checkedBytes: 1073741824, nonZeroBytes: 0 }
 * await sanitizer.close();
 * ```
 */
export class CudaSanitizer implements Sanitizer {
  readonly device = "cuda" as const;
  /** The opened GPU. */
  readonly info: CudaDeviceInfo;
  /** How zero() clears memory. */
  readonly zeroMethod: CudaZeroMethod;
  #lib: CudaLibrary;
  #sym: CudaSymbols;
  #stream: Deno.PointerValue;
  #event: Deno.PointerValue;
  #deviceCounter: Deno.PointerValue;
  #hostCount: Deno.PointerValue;
  #hostCounts: { pointer: Deno.PointerValue; entries: number } | undefined;
  #live = new Set<CudaBuffer>();
  // One device counter and one pinned result slot: verifications run one at a time.
  #serial: Promise<unknown> = Promise.resolve();

  private constructor(
    lib: CudaLibrary,
    info: CudaDeviceInfo,
    zeroMethod: CudaZeroMethod,
    handles: Handles,
  ) {
    this.#lib = lib;
    this.#sym = lib.symbols;
    this.info = info;
    this.zeroMethod = zeroMethod;
    this.#stream = handles.stream;
    this.#event = handles.event;
    this.#deviceCounter = handles.deviceCounter;
    this.#hostCount = handles.hostCount;
  }

  /**
   * Loads the library, checks for a driver and a device, and creates the stream, event and
   * counters the sanitizer works with.
   *
   * @param options Library path, device ordinal and zeroing method.
   * @returns The sanitizer.
   * @throws {KvhError} `device_unavailable` when the library, the driver (CUDA error 35) or a
   *   device (CUDA error 100) is missing.
   */
  static async open(options: CudaSanitizerOptions = {}): Promise<CudaSanitizer> {
    const lib = loadCudaLibrary({ libraryPath: options.libraryPath });
    try {
      const sym = lib.symbols;
      const int = new Int32Array(1);
      check(sym, sym.kvh_device_count(int), "device count");
      const index = options.deviceIndex ?? 0;
      if (int[0]! <= index) {
        throw new KvhError(
          "device_unavailable",
          `CUDA unavailable: device ${index} requested, ${int[0]} present`,
        );
      }
      check(sym, sym.kvh_set_device(index), "set device");
      const info = readDeviceInfo(sym, index);
      const out = new BigUint64Array(1);
      check(sym, sym.kvh_stream_create(out), "stream create");
      const stream = outPointer(out);
      check(sym, sym.kvh_event_create(out, 0), "event create");
      const event = outPointer(out);
      check(sym, sym.kvh_malloc(out, 8n), "counter alloc");
      const deviceCounter = outPointer(out);
      check(sym, sym.kvh_host_alloc(out, 8n), "pinned alloc");
      const handles = { stream, event, deviceCounter, hostCount: outPointer(out) };
      await Promise.resolve();
      return new CudaSanitizer(lib, info, options.zeroMethod ?? "memset", handles);
    } catch (error) {
      lib.close();
      throw error;
    }
  }

  /** Allocates `byteLength` bytes of device memory (contents undefined until filled or zeroed). */
  async alloc(byteLength: number): Promise<DeviceBuffer> {
    if (!Number.isSafeInteger(byteLength) || byteLength < 0) {
      throw new RangeError(
        `Invalid buffer size: expected a non-negative integer, got ${byteLength}`,
      );
    }
    const out = new BigUint64Array(1);
    if (byteLength > 0) {
      const status = this.#sym.kvh_malloc(out, BigInt(byteLength));
      if (status !== 0) {
        check(this.#sym, status, `allocation of ${byteLength} bytes`);
      }
    }
    const buffer = new CudaBuffer(this, byteLength, outPointer(out));
    this.#live.add(buffer);
    await Promise.resolve();
    return buffer;
  }

  /** Fills the buffer with `pattern` repeated, and waits for it. */
  async fill(buffer: DeviceBuffer, pattern: Uint8Array): Promise<void> {
    const own = this.#own(buffer);
    if (pattern.length === 0) throw new TypeError("Cannot fill a buffer: the pattern is empty");
    const status = this.#sym.kvh_fill_pattern_async(
      own.pointer,
      BigInt(own.byteLength),
      pattern,
      BigInt(pattern.length),
      this.#stream,
    );
    check(this.#sym, status, "fill");
    await this.wait();
  }

  /** Zeroes the buffer on the stream; waits unless `{async: true}` (then {@linkcode wait}). */
  async zero(buffer: DeviceBuffer, options: ZeroOptions = {}): Promise<void> {
    const own = this.#own(buffer);
    this.#queueZero(own.pointer, own.byteLength, this.zeroMethod);
    if (!options.async) await this.wait();
  }

  /**
   * Zeroes with an explicit method; `kvh sanitize-bench` compares them.
   *
   * @param buffer A buffer of this sanitizer.
   * @param method `memset` or `kernel`.
   */
  async zeroWith(buffer: DeviceBuffer, method: CudaZeroMethod): Promise<void> {
    const own = this.#own(buffer);
    this.#queueZero(own.pointer, own.byteLength, method);
    await this.wait();
  }

  /**
   * Counts non-zero bytes on the device, after everything queued before it (a pending async
   * zero included) completed.
   */
  verify(buffer: DeviceBuffer, options: VerifyOptions = {}): Promise<VerifyResult> {
    const own = this.#own(buffer);
    return this.#exclusive(async () => {
      const bytes = BigInt(own.byteLength);
      const samples = options.samples ?? 4096;
      const full = (options.mode ?? "full") === "full" || samples >= own.byteLength;
      const status = full
        ? this.#sym.kvh_count_nonzero_async(
          own.pointer,
          bytes,
          this.#deviceCounter,
          this.#hostCount,
          this.#stream,
        )
        : this.#sym.kvh_count_nonzero_sampled_async(
          own.pointer,
          bytes,
          BigInt(samples),
          BigInt(options.seed ?? 0),
          this.#deviceCounter,
          this.#hostCount,
          this.#stream,
        );
      check(this.#sym, status, "verification");
      await this.wait();
      const nonZeroBytes = Number(new Deno.UnsafePointerView(this.#hostCount!).getBigUint64());
      return { checkedBytes: full ? own.byteLength : samples, nonZeroBytes };
    });
  }

  /**
   * Zeroes and verifies many blocks of one pool in one kernel launch. The list must be sorted
   * by offset, non-overlapping and inside the pool; a bad list is rejected before anything is
   * queued.
   *
   * @param pool A buffer of this sanitizer.
   * @param blocks The blocks, sorted by offset.
   * @returns Bytes checked, non-zero bytes left, and the count per block.
   * @throws {KvhError} `blocks_invalid` naming the first bad block.
   */
  zeroVerifyBlocks(pool: DeviceBuffer, blocks: readonly PoolBlock[]): Promise<BlocksResult> {
    const own = this.#own(pool);
    return this.#exclusive(async () => {
      const list = new BigUint64Array(blocks.length * 2);
      let checkedBytes = 0;
      blocks.forEach((block, i) => {
        list[2 * i] = BigInt(block.offset);
        list[2 * i + 1] = BigInt(block.length);
        checkedBytes += block.length;
      });
      const counts = this.#pinnedCounts(blocks.length);
      const bad = new Uint32Array(1);
      const status = this.#sym.kvh_zero_verify_blocks_async(
        own.pointer,
        BigInt(own.byteLength),
        list,
        blocks.length,
        counts,
        this.#hostCount,
        this.#stream,
        bad,
      );
      const reason = BLOCK_ERRORS[status];
      if (reason !== undefined) {
        throw new KvhError("blocks_invalid", `Invalid block list: ${reason} at block ${bad[0]}`);
      }
      check(this.#sym, status, "batched zero and verify");
      await this.wait();
      const view = new Deno.UnsafePointerView(counts!);
      const perBlock = blocks.map((_, i) => Number(view.getBigUint64(i * 8)));
      const nonZeroBytes = Number(new Deno.UnsafePointerView(this.#hostCount!).getBigUint64());
      return { checkedBytes, nonZeroBytes, perBlock };
    });
  }

  /**
   * Opens memory another process shared by CUDA IPC (`cudaIpcGetMemHandle` of its allocation's
   * base) as a buffer of this sanitizer: `byteLength` bytes from `offset`. Freeing the buffer
   * closes the mapping; the memory stays the other process's. The sidecar scrubs engine pools
   * this way (lib/sidecar/cuda_pool.ts).
   *
   * @param handle The 64 bytes of the `cudaIpcMemHandle_t`.
   * @param offset Offset of the pool inside the allocation.
   * @param byteLength Bytes of the pool.
   * @returns The buffer.
   * @throws {KvhError} `blocks_invalid` when the allocation is smaller than offset + byteLength.
   */
  async importIpc(handle: Uint8Array, offset: number, byteLength: number): Promise<DeviceBuffer> {
    const out = new BigUint64Array(1);
    const size = new BigUint64Array(1);
    check(this.#sym, this.#sym.kvh_ipc_open(out, size, handle), "IPC open");
    const base = outPointer(out);
    const available = Number(size[0]);
    if (base === null || (available !== 0 && offset + byteLength > available)) {
      if (base !== null) this.#sym.kvh_ipc_close(base);
      throw new KvhError(
        "blocks_invalid",
        `Invalid IPC pool: ${offset} + ${byteLength} bytes exceed the allocation of ${available}`,
      );
    }
    const buffer = new CudaBuffer(
      this,
      byteLength,
      Deno.UnsafePointer.offset(base, offset),
      base,
    );
    this.#live.add(buffer);
    await Promise.resolve();
    return buffer;
  }

  /**
   * The `cudaIpcMemHandle_t` of a buffer this sanitizer allocated, for another process to open
   * (what an engine hands the sidecar; kvh's GPU tests play the engine with it).
   *
   * @param buffer A buffer from {@linkcode CudaSanitizer.alloc}.
   * @returns The 64 handle bytes.
   */
  exportIpc(buffer: DeviceBuffer): Uint8Array {
    const own = this.#own(buffer);
    const handle = new Uint8Array(64);
    check(this.#sym, this.#sym.kvh_ipc_get_handle(handle, own.pointer), "IPC handle");
    return handle;
  }

  /** Copies `source` into `destination` (same size): the device-to-device copy roofline. */
  async copy(source: DeviceBuffer, destination: DeviceBuffer): Promise<void> {
    const from = this.#own(source);
    const to = this.#own(destination);
    assertSameSize(from, to);
    const status = this.#sym.kvh_memcpy_dtod_async(
      to.pointer,
      from.pointer,
      BigInt(from.byteLength),
      this.#stream,
    );
    check(this.#sym, status, "device copy");
    await this.wait();
  }

  /**
   * Writes host bytes into the buffer at `offset` (synchronous copy): plants bytes in tests.
   *
   * @param buffer A buffer of this sanitizer.
   * @param offset First byte to write.
   * @param bytes The bytes.
   */
  async write(buffer: DeviceBuffer, offset: number, bytes: Uint8Array): Promise<void> {
    const own = this.#own(buffer);
    checkRange(own, offset, bytes.length);
    await this.wait();
    const status = this.#sym.kvh_memcpy_htod(
      own.pointer,
      BigInt(offset),
      bytes,
      BigInt(bytes.length),
    );
    check(this.#sym, status, "host-to-device copy");
  }

  /**
   * Reads `length` bytes of the buffer from `offset` back to the host.
   *
   * @param buffer A buffer of this sanitizer.
   * @param offset First byte to read.
   * @param length Bytes to read.
   * @returns The bytes.
   */
  async read(buffer: DeviceBuffer, offset: number, length: number): Promise<Uint8Array> {
    const own = this.#own(buffer);
    checkRange(own, offset, length);
    await this.wait();
    const bytes = new Uint8Array(length);
    const status = this.#sym.kvh_memcpy_dtoh(bytes, own.pointer, BigInt(offset), BigInt(length));
    check(this.#sym, status, "device-to-host copy");
    return bytes;
  }

  /** Records an event behind everything queued and waits for it off the JS thread. */
  async wait(): Promise<void> {
    check(this.#sym, this.#sym.kvh_event_record(this.#event, this.#stream), "event record");
    if (this.#sym.kvh_event_query(this.#event) === CUDA_ERROR_NOT_READY) {
      check(this.#sym, await this.#sym.kvh_event_synchronize(this.#event), "event synchronize");
    }
  }

  /** Releases the buffer's device memory. */
  async free(buffer: DeviceBuffer): Promise<void> {
    const own = this.#own(buffer);
    own.freed = true;
    this.#live.delete(own);
    if (own.ipcBase !== null) {
      check(this.#sym, this.#sym.kvh_ipc_close(own.ipcBase), "IPC close");
    } else if (own.pointer !== null) check(this.#sym, this.#sym.kvh_free(own.pointer), "free");
    await Promise.resolve();
  }

  /** Frees every live buffer, the stream, event and counters, and unloads the library. */
  async close(): Promise<void> {
    await this.#serial;
    for (const buffer of [...this.#live]) await this.free(buffer);
    const sym = this.#sym;
    await sym.kvh_stream_synchronize(this.#stream);
    if (this.#hostCounts) sym.kvh_host_free(this.#hostCounts.pointer);
    sym.kvh_host_free(this.#hostCount);
    sym.kvh_free(this.#deviceCounter);
    sym.kvh_event_destroy(this.#event);
    sym.kvh_stream_destroy(this.#stream);
    this.#lib.close();
  }

  #own(buffer: DeviceBuffer): CudaBuffer {
    return ownedBuffer(buffer, { kind: CudaBuffer, owner: this, backend: "CUDA" });
  }

  #queueZero(pointer: Deno.PointerValue, byteLength: number, method: CudaZeroMethod): void {
    if (byteLength === 0) return;
    const bytes = BigInt(byteLength);
    const status = method === "kernel"
      ? this.#sym.kvh_zero_kernel_async(pointer, bytes, this.#stream)
      : this.#sym.kvh_memset_async(pointer, bytes, 0, this.#stream);
    check(this.#sym, status, "zeroing");
  }

  #pinnedCounts(entries: number): Deno.PointerValue {
    if (this.#hostCounts === undefined || this.#hostCounts.entries < entries) {
      if (this.#hostCounts) this.#sym.kvh_host_free(this.#hostCounts.pointer);
      this.#hostCounts = undefined;
      const out = new BigUint64Array(1);
      check(
        this.#sym,
        this.#sym.kvh_host_alloc(out, BigInt(Math.max(entries, 1) * 8)),
        "pinned alloc",
      );
      this.#hostCounts = { pointer: outPointer(out), entries };
    }
    return this.#hostCounts.pointer;
  }

  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(task, task);
    this.#serial = run.catch(() => undefined);
    return run;
  }
}

function checkRange(buffer: CudaBuffer, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > buffer.byteLength
  ) {
    throw new RangeError(
      `Invalid range: ${offset}+${length} exceeds the buffer of ${buffer.byteLength} bytes`,
    );
  }
}

function readDeviceInfo(sym: CudaSymbols, index: number): CudaDeviceInfo {
  const raw = new Uint8Array(DEVICE_INFO_BYTES);
  check(sym, sym.kvh_device_info(index, raw), "device properties");
  const view = new DataView(raw.buffer);
  const nameEnd = raw.indexOf(0);
  const versions = new Int32Array(1);
  check(sym, sym.kvh_runtime_version(versions), "runtime version");
  const runtimeVersion = versions[0]!;
  check(sym, sym.kvh_driver_version(versions), "driver version");
  return {
    name: new TextDecoder().decode(raw.subarray(0, nameEnd < 0 ? 256 : Math.min(nameEnd, 256))),
    totalBytes: Number(view.getBigUint64(256, true)),
    computeCapability: `${view.getInt32(264, true)}.${view.getInt32(268, true)}`,
    multiprocessors: view.getInt32(272, true),
    l2CacheBytes: view.getInt32(276, true),
    runtimeVersion,
    driverVersion: versions[0]!,
  };
}
