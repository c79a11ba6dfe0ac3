/**
 * The WebGPU sanitizer: buffers on the adapter's device, `clearBuffer` to zero them and a WGSL
 * compute shader that counts non-zero bytes with atomics, so only a few counters ever come back
 * to the host. Buffers larger than `maxStorageBufferBindingSize` are verified by binding them in
 * chunks; buffers larger than `maxBufferSize` are split into several GPU buffers.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import { samplePositions } from "./sample_positions.ts";
import type { DeviceBuffer, Sanitizer, VerifyOptions, VerifyResult, ZeroOptions } from "./types.ts";
import { assertSameSize, OwnedBuffer, ownedBuffer } from "./_owned_buffer.ts";

/** Options of {@linkcode WebGpuSanitizer.open}. */
export interface WebGpuSanitizerOptions {
  /**
   * Accept a software adapter (lavapipe, llvmpipe, SwiftShader). `--device auto` refuses one
   * because the CPU backend does the same work faster.
   *
   * @default {true}
   */
  allowSoftware?: boolean;
  /**
   * Largest range bound to the shader at once; lowered in tests to exercise chunking. Capped by
   * the device's `maxStorageBufferBindingSize` and rounded down to a multiple of 256.
   *
   * @default {Infinity}
   */
  maxBindingBytes?: number;
  /**
   * Largest single GPU buffer; a bigger allocation is split. Capped by `maxBufferSize`.
   *
   * @default {Infinity}
   */
  maxBufferBytes?: number;
}

const WORKGROUP = 256;
/** Storage-binding offsets must be multiples of this on every adapter (the spec's maximum). */
const BINDING_ALIGN = 256;
/** Bytes per `writeBuffer` while filling: bounded staging memory on the host. */
const FILL_STEP = 8 << 20;
/** Words each invocation scans before the grid-stride loop wraps (keeps dispatches small). */
const WORDS_PER_INVOCATION = 64;
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|softpipe|warp/i;

const COUNT_BYTES = `
fn nonZeroBytes(w: u32) -> u32 {
  return select(0u, 1u, (w & 0x000000ffu) != 0u) + select(0u, 1u, (w & 0x0000ff00u) != 0u) +
    select(0u, 1u, (w & 0x00ff0000u) != 0u) + select(0u, 1u, (w & 0xff000000u) != 0u);
}
var<workgroup> partial: atomic<u32>;
@group(0) @binding(0) var<storage, read> data: array<u32>;
@group(0) @binding(1) var<storage, read_write> counter: atomic<u32>;
fn publish(local: u32, lid: u32) {
  if (local != 0u) { atomicAdd(&partial, local); }
  workgroupBarrier();
  if (lid == 0u) {
    let sum = atomicLoad(&partial);
    if (sum != 0u) { atomicAdd(&counter, sum); }
  }
}
`;

// One atomic per workgroup into one counter per bound chunk: a chunk holds at most 2^32 - 1
// bytes, so the u32 counter cannot wrap.
const FULL_SHADER = `${COUNT_BYTES}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) groups: vec3<u32>) {
  let n = arrayLength(&data);
  let stride = groups.x * ${WORKGROUP}u;
  var local = 0u;
  for (var i = gid.x; i < n; i += stride) {
    let w = data[i];
    if (w != 0u) { local += nonZeroBytes(w); }
  }
  publish(local, lid);
}
`;

const SAMPLE_SHADER = `${COUNT_BYTES}
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) groups: vec3<u32>) {
  let n = arrayLength(&positions);
  let stride = groups.x * ${WORKGROUP}u;
  var local = 0u;
  for (var i = gid.x; i < n; i += stride) {
    let p = positions[i];
    local += select(0u, 1u, ((data[p >> 2u] >> ((p & 3u) * 8u)) & 0xffu) != 0u);
  }
  publish(local, lid);
}
`;

class WebGpuBuffer extends OwnedBuffer {
  readonly device = "webgpu" as const;
  constructor(
    owner: WebGpuSanitizer,
    byteLength: number,
    readonly segments: GPUBuffer[],
    readonly segmentBytes: number,
  ) {
    super(owner, byteLength);
  }
}

interface Range {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/**
 * Zeroization on a WebGPU device (Deno's built-in `navigator.gpu`).
 *
 * @example Scrub and verify a buffer
 * ```ts ignore
 * import { WebGpuSanitizer } from "./webgpu.ts";
 *
 * const sanitizer = await WebGpuSanitizer.open();
 * const buffer = await sanitizer.alloc(1 << 20);
 * await sanitizer.fill(buffer, new Uint8Array([7]));
 * await sanitizer.zero(buffer);
 * console.log(await sanitizer.verify(buffer)); // { checkedBytes: 1048576, nonZeroBytes: 0 }
 * await sanitizer.close();
 * ```
 */
export class WebGpuSanitizer implements Sanitizer {
  readonly device = "webgpu" as const;
  /** Adapter description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  readonly adapterName: string;
  /** Whether the adapter runs on the CPU (lavapipe and the like). */
  readonly software: boolean;
  /** Bytes bound to the shader per dispatch. */
  readonly bindingBytes: number;
  /** Bytes per GPU buffer; larger allocations are split. */
  readonly segmentBytes: number;
  #gpu: GPUDevice;
  #full: GPUComputePipeline;
  #sample: GPUComputePipeline;
  #live = new Set<WebGpuBuffer>();

  private constructor(
    gpu: GPUDevice,
    adapterName: string,
    software: boolean,
    options: WebGpuSanitizerOptions,
  ) {
    this.#gpu = gpu;
    this.adapterName = adapterName;
    this.software = software;
    const bindingLimit = Math.min(
      gpu.limits.maxStorageBufferBindingSize,
      options.maxBindingBytes ?? Infinity,
    );
    this.bindingBytes = Math.max(
      BINDING_ALIGN,
      Math.floor(bindingLimit / BINDING_ALIGN) * BINDING_ALIGN,
    );
    const bufferLimit = Math.min(gpu.limits.maxBufferSize, options.maxBufferBytes ?? Infinity);
    this.segmentBytes = Math.max(1, Math.floor(bufferLimit / this.bindingBytes)) *
      this.bindingBytes;
    this.#full = gpu.createComputePipeline({
      layout: "auto",
      compute: { module: gpu.createShaderModule({ code: FULL_SHADER }), entryPoint: "main" },
    });
    this.#sample = gpu.createComputePipeline({
      layout: "auto",
      compute: { module: gpu.createShaderModule({ code: SAMPLE_SHADER }), entryPoint: "main" },
    });
  }

  /**
   * Opens the first adapter `navigator.gpu` offers and a device with its largest buffer limits.
   *
   * @param options Software-adapter policy and chunking limits.
   * @returns The sanitizer.
   * @throws {KvhError} `device_unavailable` when there is no adapter (or only a software one
   *   that was refused).
   */
  static async open(options: WebGpuSanitizerOptions = {}): Promise<WebGpuSanitizer> {
    if (typeof navigator === "undefined" || !("gpu" in navigator)) {
      throw unavailable("navigator.gpu is missing in this runtime");
    }
    let adapter: GPUAdapter | null;
    try {
      adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    } catch (error) {
      throw unavailable(`requesting an adapter failed: ${errorText(error)}`, error);
    }
    if (adapter === null) throw unavailable("no adapter found (is a Vulkan driver installed?)");
    const name = adapter.info.description || adapter.info.vendor || "unknown adapter";
    const software = adapter.info.isFallbackAdapter || SOFTWARE_ADAPTER.test(name);
    if (software && !(options.allowSoftware ?? true)) {
      throw unavailable(`the only adapter is a software one: ${name}`);
    }
    const gpu = await adapter.requestDevice({
      requiredLimits: {
        maxBufferSize: adapter.limits.maxBufferSize,
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      },
    });
    return new WebGpuSanitizer(gpu, name, software, options);
  }

  /** Allocates `byteLength` bytes (zeroed by WebGPU), split into segments when needed. */
  async alloc(byteLength: number): Promise<DeviceBuffer> {
    if (!Number.isSafeInteger(byteLength) || byteLength < 0) {
      throw new RangeError(
        `Invalid buffer size: expected a non-negative integer, got ${byteLength}`,
      );
    }
    const padded = Math.ceil(byteLength / 4) * 4;
    const segments: GPUBuffer[] = [];
    this.#gpu.pushErrorScope("out-of-memory");
    this.#gpu.pushErrorScope("validation");
    for (let offset = 0; offset < padded; offset += this.segmentBytes) {
      segments.push(this.#gpu.createBuffer({
        size: Math.min(this.segmentBytes, padded - offset),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      }));
    }
    const invalid = await this.#gpu.popErrorScope();
    const oom = await this.#gpu.popErrorScope();
    const failure = oom ?? invalid;
    if (failure !== null) {
      for (const segment of segments) segment.destroy();
      throw new KvhError(
        "device_out_of_memory",
        `Cannot allocate ${byteLength} bytes on WebGPU: ${failure.message.split("\n")[0]}`,
      );
    }
    const buffer = new WebGpuBuffer(this, byteLength, segments, this.segmentBytes);
    this.#live.add(buffer);
    return buffer;
  }

  /** Fills the buffer with `pattern` repeated from offset 0; padding bytes stay zero. */
  async fill(buffer: DeviceBuffer, pattern: Uint8Array): Promise<void> {
    const own = this.#own(buffer);
    if (pattern.length === 0) throw new TypeError("Cannot fill a buffer: the pattern is empty");
    const step = Math.min(FILL_STEP, Math.ceil(own.byteLength / 4) * 4);
    const tile = new Uint8Array(step + pattern.length);
    tile.set(pattern.subarray(0, Math.min(pattern.length, tile.length)));
    for (let filled = pattern.length; filled < tile.length; filled *= 2) {
      tile.copyWithin(filled, 0, Math.min(filled, tile.length - filled));
    }
    for (let s = 0; s < own.segments.length; s++) {
      const segment = own.segments[s]!;
      const base = s * own.segmentBytes;
      for (let offset = 0; offset < segment.size; offset += step) {
        const size = Math.min(step, segment.size - offset);
        const phase = (base + offset) % pattern.length;
        let chunk = tile.subarray(phase, phase + size);
        const valid = own.byteLength - (base + offset);
        if (valid < size) {
          chunk = chunk.slice();
          chunk.fill(0, valid);
        }
        this.#gpu.queue.writeBuffer(segment, offset, chunk);
      }
    }
    await this.#gpu.queue.onSubmittedWorkDone();
  }

  /** Zeroes the whole buffer with `clearBuffer`; `{async: true}` returns once it is queued. */
  async zero(buffer: DeviceBuffer, options: ZeroOptions = {}): Promise<void> {
    const own = this.#own(buffer);
    await this.#clear(
      own.segments.map((segment) => ({ buffer: segment, offset: 0, size: segment.size })),
      options,
    );
  }

  /**
   * Zeroes `length` bytes from `offset` (one block of a paged pool). Both must be multiples
   * of 4, as `clearBuffer` requires.
   *
   * @param buffer A buffer of this sanitizer.
   * @param offset First byte, a multiple of 4.
   * @param length Bytes to zero, a multiple of 4 (or reaching the end of the buffer).
   * @param options `{async: true}` returns once queued.
   */
  async zeroRange(
    buffer: DeviceBuffer,
    offset: number,
    length: number,
    options: ZeroOptions = {},
  ): Promise<void> {
    const own = this.#own(buffer);
    if (offset < 0 || length < 0 || offset + length > own.byteLength) {
      throw new RangeError(
        `Invalid range: ${offset}+${length} exceeds the buffer of ${own.byteLength} bytes`,
      );
    }
    const end = offset + length === own.byteLength
      ? Math.ceil(own.byteLength / 4) * 4
      : offset + length;
    if (offset % 4 !== 0 || end % 4 !== 0) {
      throw new RangeError(
        `Invalid range: offset ${offset} and length ${length} must be multiples of 4`,
      );
    }
    await this.#clear(this.#ranges(own, offset, end), options);
  }

  /**
   * Counts non-zero bytes over every byte, or at the positions `samplePositions` picks (the
   * same positions the CPU backend reads for the same seed).
   */
  async verify(buffer: DeviceBuffer, options: VerifyOptions = {}): Promise<VerifyResult> {
    const own = this.#own(buffer);
    const ranges = this.#ranges(own, 0, Math.ceil(own.byteLength / 4) * 4);
    if ((options.mode ?? "full") === "full") {
      return { checkedBytes: own.byteLength, nonZeroBytes: await this.#count(ranges, null) };
    }
    const positions = samplePositions(own.byteLength, options);
    const nonZeroBytes = await this.#count(ranges, positions);
    return { checkedBytes: positions.length, nonZeroBytes };
  }

  /** Waits until everything queued on the device finished. */
  async wait(): Promise<void> {
    await this.#gpu.queue.onSubmittedWorkDone();
  }

  /** Copies `source` into `destination` (same size): the device's copy bandwidth roofline. */
  async copy(source: DeviceBuffer, destination: DeviceBuffer): Promise<void> {
    const from = this.#own(source);
    const to = this.#own(destination);
    assertSameSize(from, to);
    const encoder = this.#gpu.createCommandEncoder();
    from.segments.forEach((segment, i) => {
      encoder.copyBufferToBuffer(segment, 0, to.segments[i]!, 0, segment.size);
    });
    this.#gpu.queue.submit([encoder.finish()]);
    await this.#gpu.queue.onSubmittedWorkDone();
  }

  /** Destroys the buffer's GPU memory. */
  async free(buffer: DeviceBuffer): Promise<void> {
    const own = this.#own(buffer);
    own.freed = true;
    this.#live.delete(own);
    for (const segment of own.segments) segment.destroy();
    await Promise.resolve();
  }

  /** Frees every live buffer and destroys the device. */
  async close(): Promise<void> {
    for (const buffer of [...this.#live]) await this.free(buffer);
    this.#gpu.destroy();
  }

  #own(buffer: DeviceBuffer): WebGpuBuffer {
    return ownedBuffer(buffer, { kind: WebGpuBuffer, owner: this, backend: "WebGPU" });
  }

  /** Splits [start, end) of a buffer into ranges that fit one segment and one binding. */
  #ranges(buffer: WebGpuBuffer, start: number, end: number): Range[] {
    const ranges: Range[] = [];
    for (let at = start; at < end;) {
      const s = Math.floor(at / buffer.segmentBytes);
      const offset = at - s * buffer.segmentBytes;
      const segment = buffer.segments[s]!;
      const size = Math.min(this.bindingBytes, segment.size - offset, end - at);
      ranges.push({ buffer: segment, offset, size });
      at += size;
    }
    return ranges;
  }

  async #clear(ranges: Range[], options: ZeroOptions): Promise<void> {
    const encoder = this.#gpu.createCommandEncoder();
    for (const range of ranges) encoder.clearBuffer(range.buffer, range.offset, range.size);
    this.#gpu.queue.submit([encoder.finish()]);
    if (!options.async) await this.#gpu.queue.onSubmittedWorkDone();
  }

  /**
   * Runs the counting shader over each range (full) or over the sampled byte positions falling
   * in each range, with one counter per range, and reads back only the counters.
   */
  async #count(ranges: Range[], positions: readonly number[] | null): Promise<number> {
    if (ranges.length === 0) return 0;
    const gpu = this.#gpu;
    const counters = gpu.createBuffer({
      size: ranges.length * BINDING_ALIGN,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    const readback = gpu.createBuffer({
      size: ranges.length * BINDING_ALIGN,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const scratch: GPUBuffer[] = [counters, readback];
    try {
      const encoder = gpu.createCommandEncoder();
      const pass = encoder.beginComputePass();
      let segmentBase = 0;
      let lastSegment: GPUBuffer | undefined;
      ranges.forEach((range, i) => {
        if (range.buffer !== lastSegment) {
          if (lastSegment !== undefined) segmentBase += lastSegment.size;
          lastSegment = range.buffer;
        }
        const rangeBase = segmentBase + range.offset;
        const entries: GPUBindGroupEntry[] = [
          {
            binding: 0,
            resource: { buffer: range.buffer, offset: range.offset, size: range.size },
          },
          { binding: 1, resource: { buffer: counters, offset: i * BINDING_ALIGN, size: 4 } },
        ];
        let invocations = range.size / 4 / WORDS_PER_INVOCATION;
        if (positions !== null) {
          const local = positionsIn(positions, rangeBase, rangeBase + range.size);
          if (local.length === 0) return;
          const list = gpu.createBuffer({
            size: local.byteLength,
            usage: GPUBufferUsage.STORAGE,
            mappedAtCreation: true,
          });
          new Uint32Array(list.getMappedRange()).set(local);
          list.unmap();
          scratch.push(list);
          entries.push({ binding: 2, resource: { buffer: list } });
          invocations = local.length;
        }
        const pipeline = positions === null ? this.#full : this.#sample;
        pass.setPipeline(pipeline);
        pass.setBindGroup(
          0,
          gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }),
        );
        pass.dispatchWorkgroups(Math.min(65535, Math.max(1, Math.ceil(invocations / WORKGROUP))));
      });
      pass.end();
      encoder.copyBufferToBuffer(counters, 0, readback, 0, readback.size);
      gpu.queue.submit([encoder.finish()]);
      await readback.mapAsync(GPUMapMode.READ);
      const values = new Uint32Array(readback.getMappedRange().slice(0));
      readback.unmap();
      let total = 0;
      for (let i = 0; i < ranges.length; i++) total += values[(i * BINDING_ALIGN) / 4]!;
      return total;
    } finally {
      for (const buffer of scratch) buffer.destroy();
    }
  }
}

/** The sorted positions in [start, end), relative to `start`. */
function positionsIn(positions: readonly number[], start: number, end: number): Uint32Array {
  let lo = 0;
  while (lo < positions.length && positions[lo]! < start) lo++;
  let hi = lo;
  while (hi < positions.length && positions[hi]! < end) hi++;
  return Uint32Array.from(positions.slice(lo, hi), (p) => p - start);
}

function unavailable(reason: string, cause?: unknown): KvhError {
  return new KvhError("device_unavailable", `WebGPU unavailable: ${reason}`, { cause });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0]! : String(error);
}
