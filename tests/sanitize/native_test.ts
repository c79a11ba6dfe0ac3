import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { CpuSanitizer, TS_CPU_KERNELS } from "../../lib/sanitize/cpu.ts";
import { loadNativeCpuKernels, nativeCpuLibraryCandidates } from "../../lib/sanitize/native.ts";

const SOURCE = fileURLToPath(new URL("../../ffi/native/kvh_cpu.c", import.meta.url));

function hasCompiler(): boolean {
  try {
    return new Deno.Command("cc", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

// Each test builds its own copy, so the tests never depend on `deno task build:native` having
// run, nor race with it.
async function buildLibrary(dir: string): Promise<string> {
  const path = `${dir}/libkvh_cpu.so`;
  const { success, stderr } = await new Deno.Command("cc", {
    args: ["-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-pthread", "-o", path, SOURCE],
    stdout: "null",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  return path;
}

async function withLibrary(fn: (libraryPath: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(await buildLibrary(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ignore = !hasCompiler();

Deno.test({
  name: "loadNativeCpuKernels() counts and zeroes exactly like the TS kernels",
  ignore,
  fn: () =>
    withLibrary(async (libraryPath) => {
      for (const threads of [1, 2, 3]) {
        const kernels = loadNativeCpuKernels({ libraryPath, threads, minBytes: 1 });
        assert.equal(kernels?.name, "native");
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 1, max: 3 * 4096 + 700 }),
            fc.array(fc.nat(), { maxLength: 40 }),
            async (size, picks) => {
              const bytes = new Uint8Array(size);
              for (const pick of picks) bytes[pick % size] = (pick % 255) + 1;
              assert.equal(
                await kernels!.countNonZero(bytes),
                TS_CPU_KERNELS.countNonZero(bytes),
              );
              await kernels!.zero(bytes);
              assert.ok(bytes.every((byte) => byte === 0));
              assert.equal(await kernels!.countNonZero(bytes), 0);
            },
          ),
          { seed: 3, numRuns: 60 },
        );
      }
    }),
});

Deno.test({
  name: "loadNativeCpuKernels() zeroes and verifies in one fused pass on any number of threads",
  ignore,
  fn: () =>
    withLibrary(async (libraryPath) => {
      // blockingBelow 0: every call on another thread; 1 GiB: every call on this one.
      for (const [threads, blockingBelow] of [[1, 0], [2, 0], [3, 0], [1, 1 << 30], [2, 1 << 30]]) {
        const kernels = loadNativeCpuKernels({ libraryPath, threads, minBytes: 1, blockingBelow })!;
        // Sizes around the 256 KiB fused chunk and the 4 KiB split boundary, unaligned too.
        for (const size of [1, 4095, 256 * 1024, 256 * 1024 + 1, 3 * 256 * 1024 + 777]) {
          const bytes = new Uint8Array(size + 3).subarray(3).fill(0xa5);
          const result = kernels.zeroVerify!(bytes);
          assert.equal(result instanceof Promise, blockingBelow === 0);
          assert.equal(await result, 0, `${size} bytes, ${threads} threads`);
          assert.ok(bytes.every((byte) => byte === 0));
        }
      }
    }),
});

Deno.test({
  name: "CpuSanitizer with native kernels scrubs a large unaligned buffer and finds a stray byte",
  ignore,
  fn: () =>
    withLibrary(async (libraryPath) => {
      const kernels = loadNativeCpuKernels({ libraryPath, threads: 2, minBytes: 1 << 20 });
      const sanitizer = new CpuSanitizer({ kernels });
      assert.equal(sanitizer.kernels, "native");
      const size = (1 << 20) * 3 + 13;
      const buffer = await sanitizer.alloc(size);
      await sanitizer.fill(buffer, new Uint8Array([0x5a, 0x00, 0xa5]));
      assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, size - Math.floor(size / 3));
      await sanitizer.zero(buffer);
      assert.deepEqual(await sanitizer.verify(buffer), { checkedBytes: size, nonZeroBytes: 0 });
      await sanitizer.fill(buffer, new Uint8Array([0x5a]));
      assert.deepEqual(await sanitizer.zeroVerify(buffer), { checkedBytes: size, nonZeroBytes: 0 });
      assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, 0);
      for (const position of [0, 4095, 4096, (size >> 1) + 1, size - 1]) {
        sanitizer.bytes(buffer)[position] = 1;
        assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, 1);
        sanitizer.bytes(buffer)[position] = 0;
      }
      await sanitizer.close();
    }),
});

Deno.test({
  name: "loadNativeCpuKernels() works on buffers below minBytes on the calling thread",
  ignore,
  fn: () =>
    withLibrary((libraryPath) => {
      const kernels = loadNativeCpuKernels({ libraryPath, minBytes: 4096 })!;
      // Numbers, not promises: no thread is started for a small buffer.
      const bytes = new Uint8Array(100).fill(3);
      assert.equal(kernels.countNonZero(bytes), 100);
      assert.equal(kernels.zero(bytes), undefined);
      assert.equal(kernels.countNonZero(bytes), 0);
      bytes.fill(7, 10, 30);
      assert.equal(kernels.zeroVerify!(bytes), 0);
      assert.deepEqual(bytes, new Uint8Array(100));
    }),
});

Deno.test({
  name: "loadNativeCpuKernels() without options loads once, so a caller can revoke ffi after",
  ignore,
  fn: () => {
    const kernels = loadNativeCpuKernels();
    assert.equal(kernels?.name, "native");
    assert.equal(loadNativeCpuKernels(), kernels);
  },
});

Deno.test("loadNativeCpuKernels() returns undefined when the library is missing or broken", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(loadNativeCpuKernels({ libraryPath: `${dir}/absent.so` }), undefined);
    const bogus = `${dir}/libkvh_cpu.so`;
    await Deno.writeTextFile(bogus, "not a shared library");
    assert.equal(loadNativeCpuKernels({ libraryPath: bogus }), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nativeCpuLibraryCandidates() looks beside the executable, then in ffi/native/build", () => {
  const candidates = nativeCpuLibraryCandidates({ execPath: "/opt/kvh/kvh" });
  assert.equal(candidates[0], "/opt/kvh/libkvh_cpu.so");
  assert.match(candidates[1]!, /ffi\/native\/build\/libkvh_cpu\.so$/);
});
