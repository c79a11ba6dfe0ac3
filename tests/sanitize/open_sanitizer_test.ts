import assert from "node:assert/strict";
import { KvhError } from "../../lib/errors.ts";
import { type DeviceChoice, openSanitizer } from "../../lib/sanitize/open_sanitizer.ts";

if (!Deno.env.get("XDG_RUNTIME_DIR")) {
  const dir = Deno.makeTempDirSync({ prefix: "kvh-xdg-" });
  Deno.chmodSync(dir, 0o700);
  Deno.env.set("XDG_RUNTIME_DIR", dir);
}

const adapter = await navigator.gpu.requestAdapter();
const MISSING_LIBRARY = "/nonexistent/libkvh_cuda.so";

Deno.test("openSanitizer() opens the CPU backend for cpu", async () => {
  const { sanitizer, device, note } = await openSanitizer("cpu");
  try {
    assert.equal(device, "cpu");
    assert.equal(sanitizer.device, "cpu");
    assert.equal(note, undefined);
  } finally {
    await sanitizer.close();
  }
});

Deno.test("openSanitizer() fails with device_unavailable (exit 1) for cuda without the library", async () => {
  await assert.rejects(
    openSanitizer("cuda", { cudaLibraryPath: MISSING_LIBRARY }),
    (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "device_unavailable");
      assert.equal(error.exitCode, 1);
      assert.match(error.message, /^CUDA unavailable: libkvh_cuda\.so not found/);
      return true;
    },
  );
});

Deno.test({
  name: "openSanitizer() falls back from auto to the CPU and says why when CUDA is missing",
  ignore: adapter !== null && !adapter.info.isFallbackAdapter,
  fn: async () => {
    const { sanitizer, device, note } = await openSanitizer("auto", {
      cudaLibraryPath: MISSING_LIBRARY,
    });
    try {
      assert.equal(device, "cpu");
      assert.match(
        note!,
        /^CUDA unavailable \(libkvh_cuda\.so not found .*\); WebGPU unavailable \(.*\): using CPU$/,
      );
    } finally {
      await sanitizer.close();
    }
  },
});

Deno.test({
  name: "openSanitizer() lets auto use a software WebGPU adapter only when allowed",
  ignore: adapter === null,
  fn: async () => {
    const { sanitizer, device, note } = await openSanitizer("auto", {
      cudaLibraryPath: MISSING_LIBRARY,
      allowSoftwareWebGpu: true,
    });
    try {
      assert.equal(device, "webgpu");
      assert.match(note!, /^CUDA unavailable \(.*\): using WebGPU$/);
    } finally {
      await sanitizer.close();
    }
  },
});

Deno.test({
  name: "openSanitizer() opens WebGPU for webgpu, software adapters included",
  ignore: adapter === null,
  fn: async () => {
    const { sanitizer, device } = await openSanitizer("webgpu");
    try {
      assert.equal(device, "webgpu");
      const buffer = await sanitizer.alloc(4096);
      await sanitizer.fill(buffer, new Uint8Array([1]));
      await sanitizer.zero(buffer);
      assert.deepEqual(await sanitizer.verify(buffer), { checkedBytes: 4096, nonZeroBytes: 0 });
    } finally {
      await sanitizer.close();
    }
  },
});

Deno.test("openSanitizer() rejects an unknown device name", async () => {
  await assert.rejects(openSanitizer("tpu" as DeviceChoice), (error: unknown) => {
    assert.ok(error instanceof KvhError);
    assert.equal(error.code, "flag_invalid");
    assert.match(
      error.message,
      /^Invalid device: expected one of cpu, cuda, webgpu, auto, got "tpu"$/,
    );
    return true;
  });
});
