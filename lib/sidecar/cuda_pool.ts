/**
 * CUDA pools: an engine's allocation shared by IPC handle, opened on the GPU the engine names by
 * UUID and scrubbed with the batched zero-and-verify kernel on kvh's own stream, the count of
 * non-zero bytes taken on the device (DESIGN.md §7b).
 *
 * One daemon serves one GPU: the first pool fixes it, and a pool on another GPU is refused
 * (start one kvh per GPU). VMM pools (PyTorch `expandable_segments`) share file descriptors,
 * not IPC handles, and are refused by the session before this module is reached.
 *
 * @module
 */
import { check, loadCudaLibrary } from "../../ffi/cuda/binding.ts";
import { KvhError } from "../errors.ts";
import { CudaSanitizer } from "../sanitize/cuda.ts";
import type { ByteRange } from "./block_layout.ts";
import type { CudaPoolRequest, EnginePool, PoolScrubResult } from "./engine_pool.ts";

/** Options of {@linkcode openCudaPoolOpener}. */
export interface CudaPoolOpenerOptions {
  /** Path of `libkvh_cuda.so` (`KVH_CUDA_LIB`); unset: the binding's search. */
  libraryPath?: string;
}

function uuidBytes(uuid: string): string {
  const hex = uuid.replace(/^GPU-/i, "").replaceAll("-", "").toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) {
    throw new KvhError("flag_invalid", `Invalid gpu_uuid ${uuid}: expected GPU- and 32 hex digits`);
  }
  return hex;
}

/**
 * Checks that the CUDA library and at least one GPU are there, and returns the function the
 * daemon opens CUDA pools with.
 *
 * @param options Library path.
 * @returns The opener.
 * @throws {KvhError} `device_unavailable` without the library, a driver or a GPU.
 */
export function openCudaPoolOpener(
  options: CudaPoolOpenerOptions = {},
): (request: CudaPoolRequest) => Promise<EnginePool> {
  const lib = loadCudaLibrary({ libraryPath: options.libraryPath });
  const uuids: string[] = [];
  try {
    const count = new Int32Array(1);
    check(lib.symbols, lib.symbols.kvh_device_count(count), "device count");
    const raw = new Uint8Array(16);
    for (let i = 0; i < count[0]!; i++) {
      check(lib.symbols, lib.symbols.kvh_device_uuid(i, raw), "device UUID");
      uuids.push([...raw].map((b) => b.toString(16).padStart(2, "0")).join(""));
    }
  } finally {
    lib.close();
  }
  if (uuids.length === 0) {
    throw new KvhError("device_unavailable", "CUDA unavailable: no GPU is visible to kvh");
  }
  let served: { uuid: string; sanitizer: Promise<CudaSanitizer> } | undefined;
  return async (request) => {
    const uuid = uuidBytes(request.gpuUuid);
    const index = uuids.indexOf(uuid);
    if (index < 0) {
      throw new KvhError(
        "device_unavailable",
        `GPU ${request.gpuUuid} is not visible to kvh (check CUDA_VISIBLE_DEVICES)`,
      );
    }
    served ??= {
      uuid,
      sanitizer: CudaSanitizer.open({ libraryPath: options.libraryPath, deviceIndex: index }),
    };
    if (served.uuid !== uuid) {
      throw new KvhError(
        "device_unavailable",
        `This kvh serves GPU ${served.uuid}: start one kvh per GPU for ${request.gpuUuid}`,
      );
    }
    const sanitizer = await served.sanitizer;
    const buffer = await sanitizer.importIpc(request.ipcHandle, request.offset, request.bytes);
    const identity = `cuda:${uuid}:${
      [...request.ipcHandle].map((b) => b.toString(16).padStart(2, "0")).join("")
    }:${request.offset}`;
    return {
      device: "cuda",
      identity,
      async scrub(ranges: readonly ByteRange[], doublePass: boolean): Promise<PoolScrubResult> {
        let result = await sanitizer.zeroVerifyBlocks(buffer, ranges);
        if (doublePass) result = await sanitizer.zeroVerifyBlocks(buffer, ranges);
        return { checkedBytes: result.checkedBytes, nonZeroBytes: result.nonZeroBytes };
      },
      close: () => sanitizer.free(buffer),
    };
  };
}
