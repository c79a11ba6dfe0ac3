/**
 * Plays a serving engine on a GPU for tests/sidecar/cuda_ipc_test.ts: allocates a pool through
 * the CUDA library in its own process, fills it with tenant bytes, prints the allocation's IPC
 * handle and the GPU's UUID as one JSON line, then, after a line on stdin, prints which blocks
 * read back as all zero.
 *
 * Usage: deno run -A tests/sidecar/_cuda_ipc_owner.ts BLOCKS BLOCK_BYTES
 */
import { toHex } from "../../lib/forensic/digest.ts";
import { loadCudaLibrary } from "../../ffi/cuda/binding.ts";
import { CudaSanitizer } from "../../lib/sanitize/cuda.ts";

const [blocks, blockBytes] = Deno.args.map(Number) as [number, number];
const lib = loadCudaLibrary();
const uuid = new Uint8Array(16);
lib.symbols.kvh_device_uuid(0, uuid);
lib.close();
const sanitizer = await CudaSanitizer.open();
const pool = await sanitizer.alloc(blocks * blockBytes);
await sanitizer.fill(pool, new Uint8Array([0x5a]));
console.log(JSON.stringify({
  ipc_handle: btoa(String.fromCharCode(...sanitizer.exportIpc(pool))),
  gpu_uuid: toHex(uuid),
}));
const reader = Deno.stdin.readable.getReader();
await reader.read();
const zero: boolean[] = [];
for (let b = 0; b < blocks; b++) {
  const bytes = await sanitizer.read(pool, b * blockBytes, blockBytes);
  zero.push(bytes.every((x) => x === 0));
}
console.log(JSON.stringify(zero));
await sanitizer.close();
