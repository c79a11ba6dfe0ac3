import assert from "node:assert/strict";
import { CpuSanitizer } from "../../lib/sanitize/cpu.ts";
import { loadNativeCpuKernels } from "../../lib/sanitize/native.ts";
import { openSanitizer } from "../../lib/sanitize/open_sanitizer.ts";

// Its own file: loadNativeCpuKernels() memoises per process, and the other sanitizer tests load
// the library with FFI allowed.
Deno.test({
  name: "openSanitizer() falls back to the TS kernels when FFI is not allowed",
  permissions: { read: true, ffi: false },
  fn: async () => {
    assert.equal(loadNativeCpuKernels(), undefined);
    const { sanitizer } = await openSanitizer("cpu");
    assert.ok(sanitizer instanceof CpuSanitizer);
    assert.equal(sanitizer.kernels, "ts");
    const buffer = await sanitizer.alloc(5000);
    await sanitizer.fill(buffer, new Uint8Array([9]));
    await sanitizer.zero(buffer);
    assert.deepEqual(await sanitizer.verify(buffer), { checkedBytes: 5000, nonZeroBytes: 0 });
    await sanitizer.close();
  },
});
