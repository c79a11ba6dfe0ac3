import assert from "node:assert/strict";
import { KvhError } from "../../lib/errors.ts";
import { samplePositions } from "../../lib/sanitize/sample_positions.ts";
import type { DeviceBuffer, Sanitizer, ZeroOptions } from "../../lib/sanitize/types.ts";
import { WebGpuSanitizer } from "../../lib/sanitize/webgpu.ts";

// wgpu's Vulkan loader wants a private runtime dir; CI shells (and `deno test` here) may lack one.
if (!Deno.env.get("XDG_RUNTIME_DIR")) {
  const dir = Deno.makeTempDirSync({ prefix: "kvh-xdg-" });
  Deno.chmodSync(dir, 0o700);
  Deno.env.set("XDG_RUNTIME_DIR", dir);
}

const adapter = await navigator.gpu.requestAdapter();
const noAdapter = adapter === null;
if (noAdapter) console.warn("WebGPU tests ignored: no adapter (install mesa-vulkan-drivers)");

const PATTERN = new Uint8Array([0xa5, 0x5a, 0x11]);

async function withSanitizer(
  options: Parameters<typeof WebGpuSanitizer.open>[0],
  body: (sanitizer: WebGpuSanitizer) => Promise<void>,
): Promise<void> {
  const sanitizer = await WebGpuSanitizer.open(options);
  try {
    await body(sanitizer);
  } finally {
    await sanitizer.close();
  }
}

Deno.test({
  name: "WebGpuSanitizer.zero() leaves no non-zero byte in a filled buffer",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({}, async (sanitizer) => {
      const buffer = await sanitizer.alloc(1_000_003);
      await sanitizer.fill(buffer, PATTERN);
      assert.deepEqual(await sanitizer.verify(buffer), {
        checkedBytes: 1_000_003,
        nonZeroBytes: 1_000_003,
      });
      await sanitizer.zero(buffer);
      assert.deepEqual(await sanitizer.verify(buffer), {
        checkedBytes: 1_000_003,
        nonZeroBytes: 0,
      });
    }),
});

Deno.test({
  name: "WebGpuSanitizer.verify() counts non-zero bytes, not words, in a pattern with zeros",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({}, async (sanitizer) => {
      const buffer = await sanitizer.alloc(4099);
      await sanitizer.fill(buffer, new Uint8Array([0, 7, 0, 0, 9]));
      // Two of every five bytes are non-zero: 4099 = 819 * 5 + 4 (tail 0, 7, 0, 0).
      assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, 819 * 2 + 1);
    }),
});

Deno.test({
  name: "WebGpuSanitizer.verify() reports every leaked byte when zero() was skipped",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({}, async (sanitizer) => {
      const buffer = await sanitizer.alloc(64 * 1024);
      await sanitizer.fill(buffer, PATTERN);
      const result = await sanitizer.verify(buffer);
      assert.equal(result.nonZeroBytes, 64 * 1024);
    }),
});

/** A deliberately broken scrub: zeroes everything but the last bound chunk. */
class SkipsLastChunk implements Sanitizer {
  readonly device = "webgpu" as const;
  constructor(readonly inner: WebGpuSanitizer) {}
  alloc(byteLength: number): Promise<DeviceBuffer> {
    return this.inner.alloc(byteLength);
  }
  fill(buffer: DeviceBuffer, pattern: Uint8Array): Promise<void> {
    return this.inner.fill(buffer, pattern);
  }
  zero(buffer: DeviceBuffer, options?: ZeroOptions): Promise<void> {
    const chunk = this.inner.bindingBytes;
    const kept = Math.floor((buffer.byteLength - 1) / chunk) * chunk;
    return this.inner.zeroRange(buffer, 0, kept, options);
  }
  verify: Sanitizer["verify"] = (buffer, options) => this.inner.verify(buffer, options);
  wait(): Promise<void> {
    return this.inner.wait();
  }
  free(buffer: DeviceBuffer): Promise<void> {
    return this.inner.free(buffer);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

Deno.test({
  name: "WebGpuSanitizer.verify() catches a scrub that skips the last chunk",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({ maxBindingBytes: 4096 }, async (inner) => {
      const broken = new SkipsLastChunk(inner);
      const size = 5 * 4096 + 100;
      const buffer = await broken.alloc(size);
      await broken.fill(buffer, PATTERN);
      await broken.zero(buffer);
      const result = await broken.verify(buffer);
      assert.deepEqual(result, { checkedBytes: size, nonZeroBytes: 100 });
    }),
});

Deno.test({
  name: "WebGpuSanitizer.verify() binds buffers larger than the binding limit in chunks",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({ maxBindingBytes: 1000, maxBufferBytes: 8192 }, async (sanitizer) => {
      assert.equal(sanitizer.bindingBytes, 768);
      assert.equal(sanitizer.segmentBytes, 7680);
      const size = 3 * 7680 + 1234;
      const buffer = await sanitizer.alloc(size);
      await sanitizer.fill(buffer, PATTERN);
      // Leave non-zero bytes at the start, across a chunk and a segment boundary, and at the end.
      await sanitizer.zeroRange(buffer, 8, 760);
      await sanitizer.zeroRange(buffer, 772, 7680 * 2 - 772 - 64);
      await sanitizer.zeroRange(buffer, 7680 * 2 + 64, size - 7680 * 2 - 64 - 10);
      const result = await sanitizer.verify(buffer);
      assert.deepEqual(result, { checkedBytes: size, nonZeroBytes: 8 + 4 + 128 + 10 });
      await sanitizer.zero(buffer);
      assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, 0);
    }),
});

Deno.test({
  name: "WebGpuSanitizer.verify() in sample mode reads the CPU backend's positions",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({ maxBindingBytes: 4096 }, async (sanitizer) => {
      const size = 50_000;
      const buffer = await sanitizer.alloc(size);
      await sanitizer.fill(buffer, new Uint8Array([1]));
      await sanitizer.zeroRange(buffer, 0, 20_000);
      const options = { mode: "sample", samples: 500, seed: 7 } as const;
      const expected = samplePositions(size, options).filter((p) => p >= 20_000).length;
      const result = await sanitizer.verify(buffer, options);
      assert.deepEqual(result, { checkedBytes: 500, nonZeroBytes: expected });
      assert.deepEqual(await sanitizer.verify(buffer, options), result);
    }),
});

Deno.test({
  name: "WebGpuSanitizer.zero() with async returns at once and wait() completes it",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({}, async (sanitizer) => {
      const buffer = await sanitizer.alloc(1 << 20);
      await sanitizer.fill(buffer, PATTERN);
      await sanitizer.zero(buffer, { async: true });
      await sanitizer.wait();
      assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, 0);
    }),
});

Deno.test({
  name: "WebGpuSanitizer.copy() copies a buffer of the same size",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({ maxBufferBytes: 4096 }, async (sanitizer) => {
      const from = await sanitizer.alloc(10_000);
      const to = await sanitizer.alloc(10_000);
      await sanitizer.fill(from, PATTERN);
      await sanitizer.copy(from, to);
      assert.equal((await sanitizer.verify(to)).nonZeroBytes, 10_000);
      const other = await sanitizer.alloc(8);
      await assert.rejects(sanitizer.copy(from, other), RangeError);
    }),
});

Deno.test({
  name: "WebGpuSanitizer rejects foreign, freed and misused buffers",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({}, async (sanitizer) => {
      const buffer = await sanitizer.alloc(64);
      await assert.rejects(sanitizer.fill(buffer, new Uint8Array()), TypeError);
      await assert.rejects(sanitizer.zeroRange(buffer, 2, 8), RangeError);
      await assert.rejects(sanitizer.zeroRange(buffer, 0, 65), RangeError);
      await assert.rejects(sanitizer.alloc(-1), RangeError);
      await assert.rejects(sanitizer.zero({ device: "webgpu", byteLength: 64 }), TypeError);
      await sanitizer.free(buffer);
      await assert.rejects(sanitizer.verify(buffer), /already freed/);
      const empty = await sanitizer.alloc(0);
      assert.deepEqual(await sanitizer.verify(empty), { checkedBytes: 0, nonZeroBytes: 0 });
    }),
});

Deno.test({
  name: "WebGpuSanitizer.open() refuses a software adapter when allowSoftware is false",
  ignore: noAdapter || !adapter?.info.isFallbackAdapter,
  fn: async () => {
    await assert.rejects(WebGpuSanitizer.open({ allowSoftware: false }), (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "device_unavailable");
      assert.match(error.message, /^WebGPU unavailable: the only adapter is a software one: /);
      return true;
    });
  },
});

Deno.test({
  name: "WebGpuSanitizer.open() reports the adapter name and whether it is software",
  ignore: noAdapter,
  fn: () =>
    withSanitizer({}, async (sanitizer) => {
      assert.ok(sanitizer.adapterName.length > 0);
      assert.equal(
        sanitizer.software,
        adapter?.info.isFallbackAdapter || /llvmpipe/.test(sanitizer.adapterName),
      );
      await Promise.resolve();
    }),
});
