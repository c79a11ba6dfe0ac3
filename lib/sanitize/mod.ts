/**
 * Zeroization backends behind one {@linkcode Sanitizer} interface: the CPU backend here, CUDA
 * and WebGPU beside it.
 *
 * @module
 */
export type {
  DeviceBuffer,
  DeviceKind,
  Sanitizer,
  VerifyMode,
  VerifyOptions,
  VerifyResult,
  ZeroOptions,
} from "./types.ts";
export { type CpuKernels, CpuSanitizer, type CpuSanitizerOptions, TS_CPU_KERNELS } from "./cpu.ts";
export { samplePositions } from "./sample_positions.ts";
export { loadNativeCpuKernels, type NativeCpuKernelsOptions } from "./native.ts";
export {
  DEVICE_CHOICES,
  type DeviceChoice,
  type OpenedSanitizer,
  openSanitizer,
  type OpenSanitizerOptions,
} from "./open_sanitizer.ts";
