import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CUDA_ERROR_INSUFFICIENT_DRIVER,
  CUDA_ERROR_NO_DEVICE,
  CUDA_LIBRARY_NAME,
  CUDA_SYMBOLS,
  cudaLibraryCandidates,
  describeCudaError,
  KVH_CUDA_ERRORS,
  loadCudaLibrary,
} from "../../ffi/cuda/binding.ts";
import { KvhError } from "../../lib/errors.ts";
import { CudaSanitizer } from "../../lib/sanitize/cuda.ts";

const CUDA_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "ffi", "cuda");
const SOURCE = join(CUDA_DIR, "kvh_cuda.cu");
const BUILT = join(CUDA_DIR, "build", CUDA_LIBRARY_NAME);

function hasCommand(name: string): boolean {
  try {
    return new Deno.Command(name, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const hasNvcc = hasCommand("nvcc");
const hasNm = hasCommand("nm");

function libraryBuilt(): boolean {
  try {
    return Deno.statSync(BUILT).isFile;
  } catch {
    return false;
  }
}

/**
 * Device count status of the built library (0 with a GPU, 35 without a driver, 100 without a
 * device) and the CUDA error it stands for.
 */
function probeDevices(): { status: number; count: number; error: string } | undefined {
  if (!libraryBuilt()) return undefined;
  const library = loadCudaLibrary({ libraryPath: BUILT });
  try {
    const count = new Int32Array(1);
    const status = library.symbols.kvh_device_count(count);
    return { status, count: count[0]!, error: describeCudaError(library.symbols, status) };
  } finally {
    library.close();
  }
}

const probe = probeDevices();
const hasGpu = probe !== undefined && probe.status === 0 && probe.count > 0;
// Says what is missing: the toolkit, the build, the driver or the device.
let noGpuReason = "no CUDA device (0 devices)";
if (probe === undefined) {
  noGpuReason = hasNvcc
    ? `${CUDA_LIBRARY_NAME} is not built yet (nvcc is here: run ffi/cuda/build.sh)`
    : `${CUDA_LIBRARY_NAME} is not built and there is no nvcc to build it`;
} else if (probe.status !== 0) noGpuReason = `no usable CUDA device: ${probe.error}`;
if (!hasGpu) console.warn(`CUDA device tests ignored: ${noGpuReason}`);

// ------------------------------------------------------------------------------------------
// Build and ABI (no GPU needed)

Deno.test({
  name: "build.sh builds libkvh_cuda.so exporting every bound symbol (needs nvcc)",
  ignore: !hasNvcc || !hasNm,
  fn: async () => {
    const out = await new Deno.Command(join(CUDA_DIR, "build.sh"), {
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const nm = await new Deno.Command("nm", { args: ["-D", "--defined-only", BUILT] }).output();
    const exported = new Set(
      new TextDecoder().decode(nm.stdout).split("\n").map((line) => line.split(" ").at(-1)),
    );
    for (const name of Object.keys(CUDA_SYMBOLS)) {
      assert.ok(exported.has(name), `${name} not exported`);
    }
    // Only the kvh_ ABI is visible: the static CUDA runtime stays private to the library.
    const foreign = [...exported].filter((name) =>
      name && !name.startsWith("kvh_") && /^cuda/.test(name)
    );
    assert.deepEqual(foreign, []);
  },
});

/** C type of kvh_cuda.cu to the FFI types the binding may use for it. */
function ffiTypesOf(cType: string): string[] {
  const type = cType.replace(/\bconst\b/g, "").replace(/\s+/g, " ").trim();
  if (type.endsWith("*")) return ["pointer", "buffer"];
  const scalar: Record<string, string> = {
    int: "i32",
    uint64_t: "u64",
    uint32_t: "u32",
    void: "void",
  };
  const mapped = scalar[type];
  if (mapped === undefined) throw new Error(`Unmapped C type: ${cType}`);
  return [mapped];
}

Deno.test("CUDA_SYMBOLS match the parameter and result types of every KVH_EXPORT in kvh_cuda.cu", async () => {
  const source = await Deno.readTextFile(SOURCE);
  const exports = new Map<string, { result: string; parameters: string[] }>();
  for (const match of source.matchAll(/KVH_EXPORT\s+([\w\s*]+?)\s*\b(kvh_\w+)\(([^)]*)\)/g)) {
    const parameters = match[3]!.trim() === "void" || match[3]!.trim() === ""
      ? []
      : match[3]!.split(",").map((p) => p.trim().replace(/\s*\b\w+$/, ""));
    exports.set(match[2]!, { result: match[1]!, parameters });
  }
  assert.deepEqual([...exports.keys()].sort(), Object.keys(CUDA_SYMBOLS).sort());
  for (const [name, definition] of Object.entries(CUDA_SYMBOLS)) {
    const c = exports.get(name)!;
    assert.ok(ffiTypesOf(c.result).includes(definition.result), `${name} result`);
    assert.equal(definition.parameters.length, c.parameters.length, `${name} arity`);
    definition.parameters.forEach((type, i) => {
      assert.ok(
        ffiTypesOf(c.parameters[i]!).includes(type),
        `${name} parameter ${i}: ${c.parameters[i]}`,
      );
    });
  }
});

Deno.test("cudaLibraryCandidates() puts an explicit path alone, else next to the binary then build/", () => {
  assert.deepEqual(cudaLibraryCandidates({ libraryPath: "/opt/kvh/lib.so" }), ["/opt/kvh/lib.so"]);
  const [beside, built] = cudaLibraryCandidates({ execPath: "/usr/local/bin/kvh" });
  assert.equal(beside, `/usr/local/bin/${CUDA_LIBRARY_NAME}`);
  assert.equal(built, BUILT);
});

Deno.test("CudaSanitizer.open() fails with device_unavailable naming the paths when the library is missing", async () => {
  await assert.rejects(
    CudaSanitizer.open({ libraryPath: "/nonexistent/libkvh_cuda.so" }),
    (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "device_unavailable");
      assert.equal(error.exitCode, 1);
      assert.match(
        error.message,
        /^CUDA unavailable: libkvh_cuda\.so not found \(looked in \/nonexistent\//,
      );
      return true;
    },
  );
});

Deno.test("loadCudaLibrary() fails with device_unavailable on a file that is not a library", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, CUDA_LIBRARY_NAME);
    await Deno.writeTextFile(path, "not an ELF file");
    assert.throws(() => loadCudaLibrary({ libraryPath: path }), (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "device_unavailable");
      assert.match(error.message, /^CUDA unavailable: cannot load /);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "CudaSanitizer.open() fails with device_unavailable and the CUDA error when no driver or GPU is present",
  ignore: probe === undefined || hasGpu,
  fn: async () => {
    assert.ok([CUDA_ERROR_INSUFFICIENT_DRIVER, CUDA_ERROR_NO_DEVICE].includes(probe!.status));
    await assert.rejects(CudaSanitizer.open({ libraryPath: BUILT }), (error: unknown) => {
      assert.ok(error instanceof KvhError);
      assert.equal(error.code, "device_unavailable");
      assert.equal(error.exitCode, 1);
      assert.match(
        error.message,
        /^CUDA unavailable: cudaError(InsufficientDriver \(35\)|NoDevice \(100\)): /,
      );
      return true;
    });
  },
});

Deno.test({
  name:
    "kvh_validate_blocks() rejects unsorted, overlapping, out-of-range and empty blocks on the host",
  ignore: !libraryBuilt(),
  fn: () => {
    const library = loadCudaLibrary({ libraryPath: BUILT });
    try {
      const bad = new Uint32Array(1);
      const validate = (pool: number, blocks: number[]) =>
        library.symbols.kvh_validate_blocks(
          BigInt(pool),
          new BigUint64Array(blocks.map(BigInt)),
          blocks.length / 2,
          bad,
        );
      assert.equal(validate(100, [0, 10, 10, 10, 50, 50]), 0);
      assert.equal(validate(100, [0, 10, 20, 10, 15, 2]), KVH_CUDA_ERRORS.blocksUnsorted);
      assert.equal(bad[0], 2);
      assert.equal(validate(100, [0, 10, 5, 10]), KVH_CUDA_ERRORS.blocksOverlap);
      assert.equal(bad[0], 1);
      assert.equal(validate(100, [0, 10, 95, 6]), KVH_CUDA_ERRORS.blocksOutOfRange);
      assert.equal(validate(100, [2 ** 53, 1]), KVH_CUDA_ERRORS.blocksOutOfRange);
      assert.equal(validate(100, [0, 0]), KVH_CUDA_ERRORS.blocksEmpty);
      assert.equal(
        describeCudaError(library.symbols, KVH_CUDA_ERRORS.blocksOverlap),
        "kvhErrorBlocksOverlap (10003): blocks overlap",
      );
      assert.match(describeCudaError(library.symbols, 100), /^cudaErrorNoDevice \(100\): /);
    } finally {
      library.close();
    }
  },
});

// ------------------------------------------------------------------------------------------
// On a GPU (ignored here with the reason printed above)

const onGpu = { ignore: !hasGpu, sanitizeResources: false } as const;
const PATTERN = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x01]);

async function withCuda(body: (cuda: CudaSanitizer) => Promise<void>): Promise<void> {
  const cuda = await CudaSanitizer.open({ libraryPath: BUILT });
  try {
    await body(cuda);
  } finally {
    await cuda.close();
  }
}

for (const method of ["memset", "kernel"] as const) {
  Deno.test({
    ...onGpu,
    name: `CudaSanitizer.zeroWith(${method}) zeroes every byte of an odd-sized buffer (GPU)`,
    fn: () =>
      withCuda(async (cuda) => {
        const size = (64 << 20) + 13;
        const buffer = await cuda.alloc(size);
        await cuda.fill(buffer, PATTERN);
        assert.deepEqual(await cuda.verify(buffer), { checkedBytes: size, nonZeroBytes: size });
        await cuda.zeroWith(buffer, method);
        assert.deepEqual(await cuda.verify(buffer), { checkedBytes: size, nonZeroBytes: 0 });
      }),
  });
}

Deno.test({
  ...onGpu,
  name: "CudaSanitizer.verify() after an async zero and wait() attests full coverage (GPU)",
  fn: () =>
    withCuda(async (cuda) => {
      const buffer = await cuda.alloc(256 << 20);
      await cuda.fill(buffer, PATTERN);
      await cuda.zero(buffer, { async: true });
      await cuda.wait();
      assert.equal((await cuda.verify(buffer)).nonZeroBytes, 0);
    }),
});

Deno.test({
  ...onGpu,
  name: "CudaSanitizer.verify() counts bytes planted at the start, middle and end (GPU)",
  fn: () =>
    withCuda(async (cuda) => {
      const size = (16 << 20) + 7;
      const buffer = await cuda.alloc(size);
      await cuda.zero(buffer);
      await cuda.write(buffer, 0, new Uint8Array([1]));
      await cuda.write(buffer, 8 << 20, new Uint8Array([2, 0, 3]));
      await cuda.write(buffer, size - 1, new Uint8Array([4]));
      assert.deepEqual(await cuda.verify(buffer), { checkedBytes: size, nonZeroBytes: 4 });
      assert.deepEqual(await cuda.read(buffer, (8 << 20) - 1, 5), new Uint8Array([0, 2, 0, 3, 0]));
    }),
});

Deno.test({
  ...onGpu,
  name: "CudaSanitizer.zeroVerifyBlocks() zeroes and verifies many blocks in one launch (GPU)",
  fn: () =>
    withCuda(async (cuda) => {
      const block = 64 << 10;
      const pool = await cuda.alloc(1024 * block);
      await cuda.fill(pool, PATTERN);
      const blocks = Array.from(
        { length: 512 },
        (_, i) => ({ offset: 2 * i * block + 3, length: block - 5 }),
      );
      const result = await cuda.zeroVerifyBlocks(pool, blocks);
      assert.equal(result.nonZeroBytes, 0);
      assert.equal(result.perBlock.length, 512);
      assert.equal(result.checkedBytes, 512 * (block - 5));
      // Untouched odd blocks and the gaps keep their bytes.
      const left = await cuda.verify(pool);
      assert.equal(left.nonZeroBytes, 1024 * block - 512 * (block - 5));
    }),
});

Deno.test({
  ...onGpu,
  name:
    "CudaSanitizer.zeroVerifyBlocks() rejects overlapping and out-of-range blocks before launch (GPU)",
  fn: () =>
    withCuda(async (cuda) => {
      const pool = await cuda.alloc(1 << 20);
      await cuda.fill(pool, PATTERN);
      const bad = [
        [{ offset: 0, length: 100 }, { offset: 50, length: 100 }],
        [{ offset: 0, length: 100 }, { offset: (1 << 20) - 10, length: 11 }],
      ];
      for (const blocks of bad) {
        await assert.rejects(cuda.zeroVerifyBlocks(pool, blocks), (error: unknown) => {
          assert.ok(error instanceof KvhError);
          assert.equal(error.code, "blocks_invalid");
          assert.match(error.message, /at block 1$/);
          return true;
        });
      }
      // Nothing was zeroed: the rejection came before any launch.
      assert.equal((await cuda.verify(pool)).nonZeroBytes, 1 << 20);
    }),
});

Deno.test({
  ...onGpu,
  name: "CudaSanitizer.verify() in sample mode is deterministic per seed (GPU)",
  fn: () =>
    withCuda(async (cuda) => {
      const buffer = await cuda.alloc(1 << 20);
      await cuda.fill(buffer, new Uint8Array([1, 0]));
      const options = { mode: "sample", samples: 1000, seed: 3 } as const;
      const first = await cuda.verify(buffer, options);
      assert.equal(first.checkedBytes, 1000);
      assert.ok(first.nonZeroBytes > 300 && first.nonZeroBytes < 700);
      assert.deepEqual(await cuda.verify(buffer, options), first);
    }),
});
