import assert from "node:assert/strict";
import fc from "fast-check";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CUDA_LIBRARY_NAME, loadCudaLibrary } from "../../ffi/cuda/binding.ts";
import { CpuSanitizer } from "../../lib/sanitize/cpu.ts";
import { samplePositions } from "../../lib/sanitize/sample_positions.ts";
import type { Sanitizer } from "../../lib/sanitize/types.ts";
import { WebGpuSanitizer } from "../../lib/sanitize/webgpu.ts";

const BUILT = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "ffi",
  "cuda",
  "build",
  CUDA_LIBRARY_NAME,
);
const cudaBuilt = (() => {
  try {
    return Deno.statSync(BUILT).isFile;
  } catch {
    return false;
  }
})();

// wgpu's Vulkan loader wants a private runtime dir; CI shells may lack one.
if (!Deno.env.get("XDG_RUNTIME_DIR")) {
  const dir = Deno.makeTempDirSync({ prefix: "kvh-xdg-" });
  Deno.chmodSync(dir, 0o700);
  Deno.env.set("XDG_RUNTIME_DIR", dir);
}
const adapter = await navigator.gpu.requestAdapter();

Deno.test("samplePositions() gives distinct ascending positions that depend on the seed", () => {
  const a = samplePositions(1 << 20, { samples: 64, seed: 1 });
  const b = samplePositions(1 << 20, { samples: 64, seed: 2 });
  assert.equal(new Set(a).size, 64);
  assert.deepEqual(a, [...a].sort((x, y) => x - y));
  assert.notDeepEqual(a, b);
  assert.ok(a.every((p) => p >= 0 && p < 1 << 20));
  assert.deepEqual(samplePositions(0, { samples: 8 }), []);
  assert.equal(samplePositions(1 << 20).length, 4096);
  assert.throws(() => samplePositions(10, { samples: -1 }), RangeError);
});

Deno.test({
  name: "samplePositions() and the CUDA kernel's kvh_sample_positions() give the same positions",
  // The host-side export needs the library only, not a GPU: ffi/cuda/build.sh builds it.
  ignore: !cudaBuilt,
  fn() {
    const library = loadCudaLibrary({ libraryPath: BUILT });
    try {
      const cuda = (bytes: number, samples: number, seed: number): number[] => {
        const out = new BigUint64Array(samples);
        const status = library.symbols.kvh_sample_positions(
          BigInt(bytes),
          BigInt(samples),
          BigInt(seed),
          out,
        );
        assert.equal(status, 0);
        return [...out].map(Number);
      };
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 2 ** 40 }),
          fc.integer({ min: 1, max: 3000 }),
          fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.maxSafeNat()),
          (bytes, wanted, seed) => {
            const samples = Math.min(wanted, bytes);
            assert.deepEqual(cuda(bytes, samples, seed), samplePositions(bytes, { samples, seed }));
          },
        ),
        { seed: 20261201, numRuns: 300 },
      );
      // The edges: one stratum per byte, one sample, the largest 32-bit seed.
      assert.deepEqual(cuda(7, 7, 3), [0, 1, 2, 3, 4, 5, 6]);
      assert.deepEqual(
        cuda(1 << 20, 1, 2 ** 32 - 1),
        samplePositions(1 << 20, {
          samples: 1,
          seed: 2 ** 32 - 1,
        }),
      );
      const empty = library.symbols.kvh_sample_positions(8n, 0n, 0n, new BigUint64Array(1));
      assert.notEqual(empty, 0, "zero samples is the caller's error");
    } finally {
      library.close();
    }
  },
});

// Every seventh byte non-zero: a sampled verify then counts exactly the sampled positions that
// are multiples of 7, so the count tells whether a backend read the positions samplePositions()
// gives (any other choice of positions gives another count for some seed).
async function sampledCount(sanitizer: Sanitizer, bytes: number, samples: number, seed: number) {
  const buffer = await sanitizer.alloc(bytes);
  try {
    await sanitizer.fill(buffer, new Uint8Array([1, 0, 0, 0, 0, 0, 0]));
    return (await sanitizer.verify(buffer, { mode: "sample", samples, seed })).nonZeroBytes;
  } finally {
    await sanitizer.free(buffer);
  }
}

const CASES = [
  [4096, 16, 7],
  [1_000_003, 4096, 1],
  [1_000_003, 4096, 0xdeadbeef],
  [65_536, 999, 123_456_789],
] as const;

for (
  const [name, open, ignore] of [
    ["CpuSanitizer", () => Promise.resolve(new CpuSanitizer()), false],
    ["WebGpuSanitizer", () => WebGpuSanitizer.open({ allowSoftware: true }), adapter === null],
  ] as const
) {
  Deno.test({
    name: `${name}.verify() in sample mode reads exactly the positions of samplePositions()`,
    ignore,
    async fn() {
      const sanitizer: Sanitizer = await open();
      try {
        for (const [bytes, samples, seed] of CASES) {
          const expected = samplePositions(bytes, { samples, seed }).filter((p) => p % 7 === 0);
          assert.equal(await sampledCount(sanitizer, bytes, samples, seed), expected.length);
        }
      } finally {
        await sanitizer.close();
      }
    },
  });
}
