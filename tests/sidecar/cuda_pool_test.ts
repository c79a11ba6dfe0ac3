import assert from "node:assert/strict";
import { join } from "node:path";
import { KvhError } from "../../lib/errors.ts";
import { openCudaPoolOpener } from "../../lib/sidecar/mod.ts";
import { ROOT } from "../cli/_kvh.ts";
import { startListen } from "./_listen.ts";

const BUILT = join(ROOT, "ffi/cuda/build/libkvh_cuda.so");
const built = await Deno.stat(BUILT).then(() => true, () => false);

Deno.test("openCudaPoolOpener() without the CUDA library is device_unavailable", () => {
  assert.throws(
    () => openCudaPoolOpener({ libraryPath: join(ROOT, "ffi/cuda/build/missing.so") }),
    (error: unknown) => error instanceof KvhError && error.code === "device_unavailable",
  );
});

Deno.test({
  name: "openCudaPoolOpener() with the library but no GPU is device_unavailable",
  ignore: !built,
  fn() {
    let opener: unknown;
    try {
      opener = openCudaPoolOpener({ libraryPath: BUILT });
    } catch (error) {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "device_unavailable");
      return;
    }
    // A machine with a GPU gets an opener instead; the GPU script tests that path.
    assert.equal(typeof opener, "function");
  },
});

Deno.test("kvh trace --listen --device auto serves CPU pools when CUDA is unavailable", async () => {
  const kvh = await startListen(["--device", "auto"]);
  try {
    const { code, stderr } = await kvh.stop();
    assert.equal(code, 0, stderr);
  } finally {
    await Deno.remove(kvh.dir, { recursive: true });
  }
});
