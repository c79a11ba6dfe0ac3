import assert from "node:assert/strict";
import {
  type CpuKernels,
  CpuSanitizer,
  FUSED_CHUNK_BYTES,
  TS_CPU_KERNELS,
} from "../../lib/sanitize/cpu.ts";
import { samplePositions } from "../../lib/sanitize/sample_positions.ts";

Deno.test("CpuSanitizer.alloc() returns a zero-filled buffer of the asked size", async () => {
  const sanitizer = new CpuSanitizer();
  const buffer = await sanitizer.alloc(1000);
  assert.equal(buffer.device, "cpu");
  assert.equal(buffer.byteLength, 1000);
  assert.deepEqual(await sanitizer.verify(buffer), { checkedBytes: 1000, nonZeroBytes: 0 });
});

Deno.test("CpuSanitizer.alloc() rejects negative and fractional sizes", async () => {
  const sanitizer = new CpuSanitizer();
  await assert.rejects(sanitizer.alloc(-1), RangeError);
  await assert.rejects(sanitizer.alloc(1.5), RangeError);
});

Deno.test("CpuSanitizer.fill() repeats the pattern over the whole buffer", async () => {
  const sanitizer = new CpuSanitizer();
  const buffer = await sanitizer.alloc(11);
  await sanitizer.fill(buffer, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...sanitizer.bytes(buffer)], [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2]);
  const short = await sanitizer.alloc(2);
  await sanitizer.fill(short, new Uint8Array([9, 8, 7]));
  assert.deepEqual([...sanitizer.bytes(short)], [9, 8]);
  const empty = await sanitizer.alloc(0);
  await sanitizer.fill(empty, new Uint8Array([1]));
  await assert.rejects(sanitizer.fill(buffer, new Uint8Array()), RangeError);
});

Deno.test("CpuSanitizer.zero() clears every byte of a multi-block buffer", async () => {
  const sanitizer = new CpuSanitizer();
  const size = (1 << 20) * 3 + 17;
  const buffer = await sanitizer.alloc(size);
  await sanitizer.fill(buffer, new Uint8Array([0xaa]));
  assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, size);
  await sanitizer.zero(buffer, { async: true });
  await sanitizer.wait();
  assert.deepEqual(await sanitizer.verify(buffer), { checkedBytes: size, nonZeroBytes: 0 });
});

Deno.test("CpuSanitizer.verify() counts a single stray byte in any block", async () => {
  const sanitizer = new CpuSanitizer();
  const size = (1 << 20) * 2 + 5;
  const buffer = await sanitizer.alloc(size);
  for (const position of [0, (1 << 20) - 1, 1 << 20, size - 1]) {
    sanitizer.bytes(buffer)[position] = 1;
    assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, 1);
    sanitizer.bytes(buffer)[position] = 0;
  }
});

Deno.test("CpuSanitizer.verify() in sample mode reads the seeded positions only", async () => {
  const sanitizer = new CpuSanitizer();
  const buffer = await sanitizer.alloc(4096);
  const positions = samplePositions(4096, { samples: 16, seed: 7 });
  sanitizer.bytes(buffer)[positions[3]!] = 5;
  assert.deepEqual(await sanitizer.verify(buffer, { mode: "sample", samples: 16, seed: 7 }), {
    checkedBytes: 16,
    nonZeroBytes: 1,
  });
  const all = await sanitizer.verify(buffer, { mode: "sample", samples: 10_000 });
  assert.deepEqual(all, { checkedBytes: 4096, nonZeroBytes: 1 });
});

Deno.test("CpuSanitizer.free() makes the buffer unusable", async () => {
  const sanitizer = new CpuSanitizer();
  const buffer = await sanitizer.alloc(8);
  await sanitizer.free(buffer);
  await assert.rejects(sanitizer.zero(buffer), TypeError);
  await assert.rejects(sanitizer.verify(buffer), TypeError);
  const other = await sanitizer.alloc(8);
  await sanitizer.close();
  assert.throws(() => sanitizer.bytes(other), TypeError);
  assert.throws(() => new CpuSanitizer().bytes(buffer), TypeError);
});

Deno.test("CpuSanitizer uses injected kernels, so a broken zeroizer shows as non-zero bytes", async () => {
  const broken: CpuKernels = { ...TS_CPU_KERNELS, name: "broken", zero: () => {} };
  const sanitizer = new CpuSanitizer({ kernels: broken });
  assert.equal(sanitizer.kernels, "broken");
  assert.equal(new CpuSanitizer().kernels, "ts");
  const buffer = await sanitizer.alloc(100);
  await sanitizer.fill(buffer, new Uint8Array([1]));
  await sanitizer.zero(buffer);
  assert.equal((await sanitizer.verify(buffer)).nonZeroBytes, 100);
});

Deno.test("CpuSanitizer.zeroVerify() zeroes and reads back every chunk, partial ones included", async () => {
  const sanitizer = new CpuSanitizer();
  for (const size of [0, 1, FUSED_CHUNK_BYTES - 1, FUSED_CHUNK_BYTES, 2 * FUSED_CHUNK_BYTES + 5]) {
    const buffer = await sanitizer.alloc(size);
    await sanitizer.fill(buffer, new Uint8Array([7, 0, 9]));
    assert.deepEqual(await sanitizer.zeroVerify(buffer), { checkedBytes: size, nonZeroBytes: 0 });
    assert.ok(sanitizer.bytes(buffer).every((byte) => byte === 0), `${size} bytes`);
  }
  await sanitizer.close();
});

Deno.test("CpuSanitizer.zeroVerify() counts what a broken zeroizer left", async () => {
  // A fused kernel that skips the last byte of every chunk: the read-back must see each one.
  const skipping: CpuKernels = {
    ...TS_CPU_KERNELS,
    name: "skips-chunk-ends",
    zeroVerify: (bytes) => {
      let count = 0;
      for (let at = 0; at < bytes.length; at += FUSED_CHUNK_BYTES) {
        const chunk = bytes.subarray(at, at + FUSED_CHUNK_BYTES);
        chunk.subarray(0, chunk.length - 1).fill(0);
        count += TS_CPU_KERNELS.countNonZero(chunk) as number;
      }
      return count;
    },
  };
  // Without a fused kernel, zeroVerify zeroes and then reads back in a second pass.
  const { zeroVerify: _, ...plain } = TS_CPU_KERNELS;
  const broken: CpuKernels = { ...plain, name: "broken", zero: () => {} };
  const size = 2 * FUSED_CHUNK_BYTES + 10;
  for (const [kernels, left] of [[skipping, 3], [broken, size]] as const) {
    const sanitizer = new CpuSanitizer({ kernels });
    const buffer = await sanitizer.alloc(size);
    await sanitizer.fill(buffer, new Uint8Array([1]));
    assert.deepEqual(await sanitizer.zeroVerify(buffer), {
      checkedBytes: size,
      nonZeroBytes: left,
    });
    await sanitizer.close();
  }
});
