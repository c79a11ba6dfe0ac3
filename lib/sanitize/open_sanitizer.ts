/**
 * Opens the sanitizer backend of a device by name, with `auto` falling back from CUDA to a
 * hardware WebGPU adapter to the CPU. Backends are imported lazily, so a CPU run never loads
 * the CUDA binding or touches `navigator.gpu`.
 *
 * @module
 */
import { KvhError } from "../errors.ts";
import type { DeviceKind, Sanitizer } from "./types.ts";

/** A device name as the `--device` flag accepts it. */
export type DeviceChoice = DeviceKind | "auto";

/**
 * Every value of {@linkcode DeviceChoice}, in the order `--help` lists them.
 *
 * @example Usage
 * ```ts
 * import { DEVICE_CHOICES } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(DEVICE_CHOICES.includes("auto"));
 * ```
 */
export const DEVICE_CHOICES: readonly DeviceChoice[] = ["cpu", "cuda", "webgpu", "auto"];

/** Options of {@linkcode openSanitizer}. */
export interface OpenSanitizerOptions {
  /**
   * Path of `libkvh_cuda.so`; the CLI resolves `KVH_CUDA_LIB` into it. Without it the library
   * is looked for next to the executable, then in `ffi/cuda/build/`.
   *
   * @default {undefined}
   */
  cudaLibraryPath?: string;
  /**
   * How the CUDA backend zeroes: `cudaMemsetAsync` or kvh's 16-byte-store kernel.
   *
   * @default {"memset"}
   */
  cudaZeroMethod?: "memset" | "kernel";
  /**
   * Whether `auto` may pick a software WebGPU adapter (lavapipe, llvmpipe, SwiftShader). It is
   * slower than the CPU backend at the same job, so `auto` skips it unless asked.
   *
   * @default {false}
   */
  allowSoftwareWebGpu?: boolean;
}

/** What {@linkcode openSanitizer} opened. */
export interface OpenedSanitizer {
  /** The backend, ready to allocate buffers. Close it when done. */
  sanitizer: Sanitizer;
  /** The device actually used (differs from the request only for `auto`). */
  device: DeviceKind;
  /** Why `auto` did not use a faster device, for the operator; absent when nothing was skipped. */
  note?: string;
}

/**
 * Opens the sanitizer of `device`. `cuda` and `webgpu` fail with a `device_unavailable`
 * {@linkcode KvhError} (exit 1) when no library, driver, device or adapter is there; `auto`
 * tries CUDA, then a hardware WebGPU adapter, then uses the CPU and says why in `note`.
 *
 * @param device The device name, or `auto`.
 * @param options Library path of the CUDA backend and the software-adapter policy.
 * @returns The opened backend, the device it runs on and a note on any fallback.
 *
 * @example Open the CPU backend
 * ```ts
 * import { openSanitizer } from "../../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const { sanitizer, device } = await openSanitizer("cpu");
 * assert.equal(device, "cpu");
 * await sanitizer.close();
 * ```
 */
export async function openSanitizer(
  device: DeviceChoice,
  options: OpenSanitizerOptions = {},
): Promise<OpenedSanitizer> {
  switch (device) {
    case "cpu":
      return { sanitizer: await openCpu(), device: "cpu" };
    case "cuda":
      return { sanitizer: await openCuda(options), device: "cuda" };
    case "webgpu":
      return { sanitizer: await openWebGpu(true), device: "webgpu" };
    case "auto":
      return await openAuto(options);
    default:
      throw new KvhError(
        "flag_invalid",
        `Invalid device: expected one of ${DEVICE_CHOICES.join(", ")}, got ${
          JSON.stringify(device)
        }`,
      );
  }
}

async function openAuto(options: OpenSanitizerOptions): Promise<OpenedSanitizer> {
  const skipped: string[] = [];
  try {
    return { sanitizer: await openCuda(options), device: "cuda" };
  } catch (error) {
    skipped.push(`CUDA unavailable (${unavailableReason(error)})`);
  }
  try {
    const sanitizer = await openWebGpu(options.allowSoftwareWebGpu ?? false);
    return { sanitizer, device: "webgpu", note: `${skipped.join("; ")}: using WebGPU` };
  } catch (error) {
    skipped.push(`WebGPU unavailable (${unavailableReason(error)})`);
  }
  return { sanitizer: await openCpu(), device: "cpu", note: `${skipped.join("; ")}: using CPU` };
}

/** The reason of a device error; anything but `device_unavailable` is a real failure. */
function unavailableReason(error: unknown): string {
  if (error instanceof KvhError && error.code === "device_unavailable") {
    return error.message.replace(/^[^:]*: /, "");
  }
  throw error;
}

// The native kernels when libkvh_cpu.so is built and FFI is allowed, the TS ones otherwise.
async function openCpu(): Promise<Sanitizer> {
  const [{ CpuSanitizer }, { loadNativeCpuKernels }] = await Promise.all([
    import("./cpu.ts"),
    import("./native.ts"),
  ]);
  return new CpuSanitizer({ kernels: loadNativeCpuKernels() });
}

async function openCuda(options: OpenSanitizerOptions): Promise<Sanitizer> {
  const { CudaSanitizer } = await import("./cuda.ts");
  return await CudaSanitizer.open({
    libraryPath: options.cudaLibraryPath,
    zeroMethod: options.cudaZeroMethod,
  });
}

async function openWebGpu(allowSoftware: boolean): Promise<Sanitizer> {
  const { WebGpuSanitizer } = await import("./webgpu.ts");
  return await WebGpuSanitizer.open({ allowSoftware });
}
