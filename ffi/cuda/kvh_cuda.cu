// kvh_cuda: the C ABI kvh loads with Deno.dlopen (ffi/cuda/binding.ts) to scrub and verify KV
// cache memory on NVIDIA GPUs.
//
// Rules of this file:
// - Every exported function returns an int: 0 (cudaSuccess), a cudaError_t value, or one of
//   the KVH_ERR_* codes below (>= 10000, so they never collide with CUDA's). Nothing aborts,
//   nothing prints.
// - Results come back through out-parameters; device pointers, streams and events are opaque
//   handles (void*).
// - Work is queued on the caller's stream; only kvh_*_synchronize and the synchronous copies
//   block, and the binding calls those off the JS thread.
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include <new>

#define KVH_EXPORT extern "C" __attribute__((visibility("default")))

enum {
  KVH_ERR_INVALID_ARGUMENT = 10001,
  KVH_ERR_BLOCKS_UNSORTED = 10002,
  KVH_ERR_BLOCKS_OVERLAP = 10003,
  KVH_ERR_BLOCKS_OUT_OF_RANGE = 10004,
  KVH_ERR_BLOCKS_EMPTY = 10005,
};

static const int THREADS = 256;
// Batched mode splits each (offset, length) block into items of at most this many bytes so one
// thread block never owns a huge range while others idle.
static const uint64_t ITEM_BYTES = 256u << 10;

// ---------------------------------------------------------------------------------------------
// Versions, devices, errors

KVH_EXPORT int kvh_abi_version(void) { return 2; }

KVH_EXPORT int kvh_runtime_version(int* out) { return (int)cudaRuntimeGetVersion(out); }

KVH_EXPORT int kvh_driver_version(int* out) { return (int)cudaDriverGetVersion(out); }

KVH_EXPORT int kvh_device_count(int* out) {
  *out = 0;
  return (int)cudaGetDeviceCount(out);
}

KVH_EXPORT int kvh_set_device(int device) { return (int)cudaSetDevice(device); }

// Layout shared with binding.ts (DEVICE_INFO_BYTES): name[256], then little-endian fields.
struct KvhDeviceInfo {
  char name[256];
  uint64_t total_bytes;          // 256
  int32_t major;                 // 264
  int32_t minor;                 // 268
  int32_t multiprocessors;       // 272
  int32_t l2_cache_bytes;        // 276
  int32_t memory_bus_bits;       // 280
  int32_t memory_clock_khz;      // 284
};

KVH_EXPORT int kvh_device_info(int device, KvhDeviceInfo* out) {
  memset(out, 0, sizeof(*out));
  cudaDeviceProp prop;
  cudaError_t err = cudaGetDeviceProperties(&prop, device);
  if (err != cudaSuccess) return (int)err;
  strncpy(out->name, prop.name, sizeof(out->name) - 1);
  out->total_bytes = prop.totalGlobalMem;
  out->major = prop.major;
  out->minor = prop.minor;
  out->multiprocessors = prop.multiProcessorCount;
  out->l2_cache_bytes = prop.l2CacheSize;
  out->memory_bus_bits = prop.memoryBusWidth;
  int clock = 0;
  // memoryClockRate left cudaDeviceProp in CUDA 13; the attribute remains.
  if (cudaDeviceGetAttribute(&clock, cudaDevAttrMemoryClockRate, device) == cudaSuccess) {
    out->memory_clock_khz = clock;
  }
  return 0;
}

static const char* kvh_own_error_name(int code) {
  switch (code) {
    case KVH_ERR_INVALID_ARGUMENT: return "kvhErrorInvalidArgument";
    case KVH_ERR_BLOCKS_UNSORTED: return "kvhErrorBlocksUnsorted";
    case KVH_ERR_BLOCKS_OVERLAP: return "kvhErrorBlocksOverlap";
    case KVH_ERR_BLOCKS_OUT_OF_RANGE: return "kvhErrorBlocksOutOfRange";
    case KVH_ERR_BLOCKS_EMPTY: return "kvhErrorBlocksEmpty";
    default: return 0;
  }
}

static const char* kvh_own_error_string(int code) {
  switch (code) {
    case KVH_ERR_INVALID_ARGUMENT: return "invalid argument (null pointer or zero count)";
    case KVH_ERR_BLOCKS_UNSORTED: return "blocks are not sorted by offset";
    case KVH_ERR_BLOCKS_OVERLAP: return "blocks overlap";
    case KVH_ERR_BLOCKS_OUT_OF_RANGE: return "a block lies outside the pool";
    case KVH_ERR_BLOCKS_EMPTY: return "a block has length 0";
    default: return 0;
  }
}

KVH_EXPORT const char* kvh_error_name(int code) {
  const char* own = kvh_own_error_name(code);
  return own ? own : cudaGetErrorName((cudaError_t)code);
}

KVH_EXPORT const char* kvh_error_string(int code) {
  const char* own = kvh_own_error_string(code);
  return own ? own : cudaGetErrorString((cudaError_t)code);
}

// The sticky last error, cleared, so a failed launch is reported once and not by the next call.
KVH_EXPORT int kvh_get_last_error(void) { return (int)cudaGetLastError(); }

// ---------------------------------------------------------------------------------------------
// Streams, events, memory

KVH_EXPORT int kvh_stream_create(void** out) {
  cudaStream_t stream = 0;
  cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  *out = (void*)stream;
  return (int)err;
}

KVH_EXPORT int kvh_stream_destroy(void* stream) {
  return (int)cudaStreamDestroy((cudaStream_t)stream);
}

KVH_EXPORT int kvh_stream_synchronize(void* stream) {
  return (int)cudaStreamSynchronize((cudaStream_t)stream);
}

// timing != 0 creates an event usable with kvh_event_elapsed_ms; otherwise timing is disabled,
// which makes record/synchronize cheaper.
KVH_EXPORT int kvh_event_create(void** out, int timing) {
  cudaEvent_t event = 0;
  cudaError_t err = cudaEventCreateWithFlags(&event, timing ? cudaEventDefault : cudaEventDisableTiming);
  *out = (void*)event;
  return (int)err;
}

KVH_EXPORT int kvh_event_destroy(void* event) { return (int)cudaEventDestroy((cudaEvent_t)event); }

KVH_EXPORT int kvh_event_record(void* event, void* stream) {
  return (int)cudaEventRecord((cudaEvent_t)event, (cudaStream_t)stream);
}

// 0 when complete, cudaErrorNotReady (600) while pending.
KVH_EXPORT int kvh_event_query(void* event) { return (int)cudaEventQuery((cudaEvent_t)event); }

KVH_EXPORT int kvh_event_synchronize(void* event) {
  return (int)cudaEventSynchronize((cudaEvent_t)event);
}

KVH_EXPORT int kvh_event_elapsed_ms(float* out, void* start, void* end) {
  return (int)cudaEventElapsedTime(out, (cudaEvent_t)start, (cudaEvent_t)end);
}

KVH_EXPORT int kvh_malloc(void** out, uint64_t bytes) {
  *out = 0;
  return (int)cudaMalloc(out, (size_t)bytes);
}

KVH_EXPORT int kvh_free(void* ptr) { return (int)cudaFree(ptr); }

// Pinned host memory: the verification count is copied into it asynchronously.
KVH_EXPORT int kvh_host_alloc(void** out, uint64_t bytes) {
  *out = 0;
  return (int)cudaMallocHost(out, (size_t)bytes);
}

KVH_EXPORT int kvh_host_free(void* ptr) { return (int)cudaFreeHost(ptr); }

KVH_EXPORT int kvh_memcpy_htod(void* dst, uint64_t dst_offset, const void* src, uint64_t bytes) {
  return (int)cudaMemcpy((char*)dst + dst_offset, src, (size_t)bytes, cudaMemcpyHostToDevice);
}

KVH_EXPORT int kvh_memcpy_dtoh(void* dst, const void* src, uint64_t src_offset, uint64_t bytes) {
  return (int)cudaMemcpy(dst, (const char*)src + src_offset, (size_t)bytes, cudaMemcpyDeviceToHost);
}

KVH_EXPORT int kvh_memcpy_dtod_async(void* dst, const void* src, uint64_t bytes, void* stream) {
  return (int)cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)stream);
}

// ---------------------------------------------------------------------------------------------
// Device helpers

// Bytes of a 32-bit word that are not zero: the classic "has zero byte" bit trick marks every
// zero byte's high bit; popcount counts them.
__device__ __forceinline__ unsigned nonzero_bytes(uint32_t w) {
  uint32_t t = (w & 0x7F7F7F7Fu) + 0x7F7F7F7Fu;
  t = ~(t | w | 0x7F7F7F7Fu);
  return 4u - __popc(t);
}

__device__ __forceinline__ unsigned nonzero_bytes4(uint4 v) {
  return nonzero_bytes(v.x) + nonzero_bytes(v.y) + nonzero_bytes(v.z) + nonzero_bytes(v.w);
}

// Count non-zero bytes of [p, p + n) with the threads [tid, tid + stride): scalar head up to
// 16-byte alignment, 16-byte loads, scalar tail. `volatile`-free __ldcg reads bypass L1 so a
// verification never sees a stale line.
__device__ unsigned long long count_range(const uint8_t* p, uint64_t n, uint64_t tid, uint64_t stride) {
  unsigned long long count = 0;
  uint64_t head = (16 - ((uintptr_t)p & 15)) & 15;
  if (head > n) head = n;
  for (uint64_t i = tid; i < head; i += stride) count += __ldcg(p + i) != 0;
  const uint4* body = (const uint4*)(p + head);
  uint64_t words = (n - head) / 16;
  for (uint64_t i = tid; i < words; i += stride) count += nonzero_bytes4(__ldcg(body + i));
  uint64_t tail = head + words * 16;
  for (uint64_t i = tail + tid; i < n; i += stride) count += __ldcg(p + i) != 0;
  return count;
}

__device__ void zero_range(uint8_t* p, uint64_t n, uint64_t tid, uint64_t stride) {
  uint64_t head = (16 - ((uintptr_t)p & 15)) & 15;
  if (head > n) head = n;
  for (uint64_t i = tid; i < head; i += stride) p[i] = 0;
  uint4* body = (uint4*)(p + head);
  uint64_t words = (n - head) / 16;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  for (uint64_t i = tid; i < words; i += stride) __stcg(body + i, zero);
  uint64_t tail = head + words * 16;
  for (uint64_t i = tail + tid; i < n; i += stride) p[i] = 0;
}

// Sum over the thread block: warp reduction with shuffles, then one value per warp in shared
// memory, reduced by warp 0. Returns the total in thread 0.
__device__ unsigned long long block_sum(unsigned long long value) {
  __shared__ unsigned long long warp_sums[THREADS / 32];
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
  int lane = threadIdx.x & 31;
  int warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  value = 0;
  if (warp == 0) {
    value = lane < (int)(blockDim.x >> 5) ? warp_sums[lane] : 0;
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  __syncthreads();
  return value;
}

__global__ void count_kernel(const uint8_t* p, uint64_t n, unsigned long long* counter) {
  uint64_t tid = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
  unsigned long long sum = block_sum(count_range(p, n, tid, stride));
  if (threadIdx.x == 0 && sum != 0) atomicAdd(counter, sum);
}

__global__ void zero_kernel(uint8_t* p, uint64_t n) {
  uint64_t tid = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  zero_range(p, n, tid, (uint64_t)gridDim.x * blockDim.x);
}

// Stratified sampling, the same positions as samplePositions() in lib/sanitize/cpu.ts (the CPU
// and WebGPU backends use that one; tests/sanitize/sample_positions_test.ts compares them with
// kvh_sample_positions below): position i lies in the i-th of `samples` equal strata, offset by
// a SplitMix32-style mix of (mix(seed) ^ i), so samples are distinct and spread over the buffer.
// The arithmetic is 32-bit unsigned as in the TypeScript (Math.imul, >>>, | 0).
__host__ __device__ __forceinline__ uint32_t mix32(uint32_t z) {
  z += 0x9e3779b9u;
  z = (z ^ (z >> 16)) * 0x85ebca6bu;
  z = (z ^ (z >> 13)) * 0xc2b2ae35u;
  return z ^ (z >> 16);
}

// The seed is taken modulo 2^32, as JavaScript's | 0 takes it.
__host__ __device__ __forceinline__ uint32_t seed_mix(uint64_t seed) { return mix32((uint32_t)seed); }

__host__ __device__ __forceinline__ uint64_t sample_position(uint64_t n, uint64_t samples, uint32_t mixed_seed,
                                                             uint64_t i) {
  uint64_t start = (uint64_t)(((unsigned __int128)i * n) / samples);
  uint64_t end = (uint64_t)(((unsigned __int128)(i + 1) * n) / samples);
  return start + mix32(mixed_seed ^ (uint32_t)i) % (end - start);
}

__global__ void sample_kernel(const uint8_t* p, uint64_t n, uint64_t samples, uint32_t mixed_seed,
                              unsigned long long* counter) {
  uint64_t tid = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
  unsigned long long count = 0;
  for (uint64_t i = tid; i < samples; i += stride) {
    count += __ldcg(p + sample_position(n, samples, mixed_seed, i)) != 0;
  }
  unsigned long long sum = block_sum(count);
  if (threadIdx.x == 0 && sum != 0) atomicAdd(counter, sum);
}

// One work item of the batched form: a piece of one block.
struct KvhItem {
  uint64_t offset;
  uint64_t length;
  uint32_t block;
  uint32_t pad;
};

// Zero then verify each item with one thread block. The block's threads read back bytes other
// threads wrote (a different stride phase) after a barrier and a fence, through L2 (__ldcg),
// so the count reflects memory, not the writer's registers.
__global__ void zero_verify_items_kernel(uint8_t* pool, const KvhItem* items, uint64_t item_count,
                                         unsigned long long* block_counts, unsigned long long* total) {
  for (uint64_t it = blockIdx.x; it < item_count; it += gridDim.x) {
    KvhItem item = items[it];
    uint8_t* p = pool + item.offset;
    zero_range(p, item.length, threadIdx.x, blockDim.x);
    __threadfence();
    __syncthreads();
    uint64_t phase = (threadIdx.x + blockDim.x / 2) % blockDim.x;
    unsigned long long sum = block_sum(count_range(p, item.length, phase, blockDim.x));
    if (threadIdx.x == 0 && sum != 0) {
      atomicAdd(block_counts + item.block, sum);
      atomicAdd(total, sum);
    }
  }
}

static int grid_for(uint64_t units) {
  int device = 0;
  int sms = 0;
  cudaGetDevice(&device);
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms <= 0) sms = 80;
  uint64_t wanted = (units + THREADS - 1) / THREADS;
  uint64_t cap = (uint64_t)sms * 8;  // enough resident blocks to saturate memory
  if (wanted < 1) wanted = 1;
  return (int)(wanted < cap ? wanted : cap);
}

// ---------------------------------------------------------------------------------------------
// Zeroing, filling, verification

KVH_EXPORT int kvh_memset_async(void* ptr, uint64_t bytes, int value, void* stream) {
  return (int)cudaMemsetAsync(ptr, value, (size_t)bytes, (cudaStream_t)stream);
}

KVH_EXPORT int kvh_zero_kernel_async(void* ptr, uint64_t bytes, void* stream) {
  if (bytes == 0) return 0;
  if (ptr == 0) return KVH_ERR_INVALID_ARGUMENT;
  zero_kernel<<<grid_for(bytes / 16), THREADS, 0, (cudaStream_t)stream>>>((uint8_t*)ptr, bytes);
  return (int)cudaGetLastError();
}

// Writes `pattern` repeated over [ptr, ptr + bytes): one host-to-device copy of the pattern,
// then doubling device-to-device copies, so the fill costs O(log(bytes / pattern)) copies.
// The host copy is staged before this returns, so the caller may release `pattern` at once.
KVH_EXPORT int kvh_fill_pattern_async(void* ptr, uint64_t bytes, const void* pattern, uint64_t pattern_bytes,
                                      void* stream) {
  if (bytes == 0) return 0;
  if (ptr == 0 || pattern == 0 || pattern_bytes == 0) return KVH_ERR_INVALID_ARGUMENT;
  cudaStream_t s = (cudaStream_t)stream;
  uint8_t* p = (uint8_t*)ptr;
  uint64_t first = pattern_bytes < bytes ? pattern_bytes : bytes;
  cudaError_t err = cudaMemcpyAsync(p, pattern, (size_t)first, cudaMemcpyHostToDevice, s);
  for (uint64_t done = first; err == cudaSuccess && done < bytes; done *= 2) {
    uint64_t n = done < bytes - done ? done : bytes - done;
    err = cudaMemcpyAsync(p + done, p, (size_t)n, cudaMemcpyDeviceToDevice, s);
  }
  return (int)err;
}

// Counts the non-zero bytes of [ptr, ptr + bytes) into *host_count (pinned host memory): resets
// the device counter, launches the counting kernel and copies the count back, all on `stream`.
// *host_count is valid only once an event recorded after this call completed.
KVH_EXPORT int kvh_count_nonzero_async(const void* ptr, uint64_t bytes, unsigned long long* device_counter,
                                       unsigned long long* host_count, void* stream) {
  if (device_counter == 0 || host_count == 0 || (ptr == 0 && bytes != 0)) return KVH_ERR_INVALID_ARGUMENT;
  cudaStream_t s = (cudaStream_t)stream;
  cudaError_t err = cudaMemsetAsync(device_counter, 0, sizeof(unsigned long long), s);
  if (err != cudaSuccess) return (int)err;
  if (bytes != 0) {
    count_kernel<<<grid_for(bytes / 16), THREADS, 0, s>>>((const uint8_t*)ptr, bytes, device_counter);
    err = cudaGetLastError();
    if (err != cudaSuccess) return (int)err;
  }
  return (int)cudaMemcpyAsync(host_count, device_counter, sizeof(unsigned long long), cudaMemcpyDeviceToHost, s);
}

// Sampled form of kvh_count_nonzero_async: reads `samples` stratified positions (all bytes when
// samples >= bytes is the caller's job: it calls the full form).
KVH_EXPORT int kvh_count_nonzero_sampled_async(const void* ptr, uint64_t bytes, uint64_t samples, uint64_t seed,
                                               unsigned long long* device_counter,
                                               unsigned long long* host_count, void* stream) {
  if (device_counter == 0 || host_count == 0 || ptr == 0 || samples == 0 || samples > bytes) {
    return KVH_ERR_INVALID_ARGUMENT;
  }
  cudaStream_t s = (cudaStream_t)stream;
  cudaError_t err = cudaMemsetAsync(device_counter, 0, sizeof(unsigned long long), s);
  if (err != cudaSuccess) return (int)err;
  sample_kernel<<<grid_for(samples), THREADS, 0, s>>>((const uint8_t*)ptr, bytes, samples, seed_mix(seed),
                                                      device_counter);
  err = cudaGetLastError();
  if (err != cudaSuccess) return (int)err;
  return (int)cudaMemcpyAsync(host_count, device_counter, sizeof(unsigned long long), cudaMemcpyDeviceToHost, s);
}

// The positions sample_kernel reads, computed on the host (no device needed): lets a test check
// them against the CPU and WebGPU backends. `out` holds `samples` entries.
KVH_EXPORT int kvh_sample_positions(uint64_t bytes, uint64_t samples, uint64_t seed, uint64_t* out) {
  if (out == 0 || samples == 0 || samples > bytes) return KVH_ERR_INVALID_ARGUMENT;
  uint32_t mixed_seed = seed_mix(seed);
  for (uint64_t i = 0; i < samples; i++) out[i] = sample_position(bytes, samples, mixed_seed, i);
  return 0;
}

// Validates a block list without touching the device: (offset, length) pairs, sorted by offset,
// non-empty, non-overlapping, inside [0, pool_bytes). Returns 0 or a KVH_ERR_BLOCKS_* code and
// the index of the first bad block in *bad_index.
KVH_EXPORT int kvh_validate_blocks(uint64_t pool_bytes, const uint64_t* blocks, uint32_t block_count,
                                   uint32_t* bad_index) {
  *bad_index = 0;
  if (blocks == 0 || block_count == 0) return KVH_ERR_INVALID_ARGUMENT;
  uint64_t previous_end = 0;
  for (uint32_t i = 0; i < block_count; i++) {
    uint64_t offset = blocks[2 * i];
    uint64_t length = blocks[2 * i + 1];
    *bad_index = i;
    if (length == 0) return KVH_ERR_BLOCKS_EMPTY;
    if (offset > pool_bytes || length > pool_bytes - offset) return KVH_ERR_BLOCKS_OUT_OF_RANGE;
    if (i > 0 && offset < blocks[2 * (i - 1)]) return KVH_ERR_BLOCKS_UNSORTED;
    if (i > 0 && offset < previous_end) return KVH_ERR_BLOCKS_OVERLAP;
    previous_end = offset + length;
  }
  *bad_index = 0;
  return 0;
}

// Zeroes and verifies a list of blocks of one pool in ONE kernel launch. The list is validated
// first (nothing is queued when it is bad). Per-block non-zero counts land in host_block_counts
// (pinned, block_count entries) and their sum in *host_total, once an event recorded after this
// call completed. Scratch device memory comes from the stream-ordered allocator and is released
// on the stream.
KVH_EXPORT int kvh_zero_verify_blocks_async(void* pool, uint64_t pool_bytes, const uint64_t* blocks,
                                            uint32_t block_count, unsigned long long* host_block_counts,
                                            unsigned long long* host_total, void* stream, uint32_t* bad_index) {
  int invalid = kvh_validate_blocks(pool_bytes, blocks, block_count, bad_index);
  if (invalid != 0) return invalid;
  if (pool == 0 || host_block_counts == 0 || host_total == 0) return KVH_ERR_INVALID_ARGUMENT;
  uint64_t item_count = 0;
  for (uint32_t i = 0; i < block_count; i++) item_count += (blocks[2 * i + 1] + ITEM_BYTES - 1) / ITEM_BYTES;
  KvhItem* items = new (std::nothrow) KvhItem[item_count];
  if (items == 0) return (int)cudaErrorMemoryAllocation;
  uint64_t k = 0;
  for (uint32_t i = 0; i < block_count; i++) {
    uint64_t offset = blocks[2 * i];
    uint64_t end = offset + blocks[2 * i + 1];
    for (; offset < end; offset += ITEM_BYTES) {
      uint64_t length = end - offset < ITEM_BYTES ? end - offset : ITEM_BYTES;
      items[k++] = KvhItem{offset, length, i, 0};
    }
  }
  cudaStream_t s = (cudaStream_t)stream;
  size_t items_bytes = item_count * sizeof(KvhItem);
  size_t counts_bytes = ((size_t)block_count + 1) * sizeof(unsigned long long);
  void* scratch = 0;
  cudaError_t err = cudaMallocAsync(&scratch, items_bytes + counts_bytes, s);
  if (err == cudaSuccess) {
    KvhItem* d_items = (KvhItem*)scratch;
    unsigned long long* d_counts = (unsigned long long*)((char*)scratch + items_bytes);
    // Pageable source: the copy is staged before cudaMemcpyAsync returns, so `items` may go.
    err = cudaMemcpyAsync(d_items, items, items_bytes, cudaMemcpyHostToDevice, s);
    if (err == cudaSuccess) err = cudaMemsetAsync(d_counts, 0, counts_bytes, s);
    if (err == cudaSuccess) {
      int grid = grid_for(item_count * THREADS);
      zero_verify_items_kernel<<<grid, THREADS, 0, s>>>((uint8_t*)pool, d_items, item_count, d_counts,
                                                       d_counts + block_count);
      err = cudaGetLastError();
    }
    if (err == cudaSuccess) {
      err = cudaMemcpyAsync(host_block_counts, d_counts, (size_t)block_count * sizeof(unsigned long long),
                            cudaMemcpyDeviceToHost, s);
    }
    if (err == cudaSuccess) {
      err = cudaMemcpyAsync(host_total, d_counts + block_count, sizeof(unsigned long long), cudaMemcpyDeviceToHost, s);
    }
    cudaError_t freed = cudaFreeAsync(scratch, s);
    if (err == cudaSuccess) err = freed;
  }
  delete[] items;
  return (int)err;
}

// ---------------------------------------------------------------------------------------------
// Engine memory shared by CUDA IPC (the sidecar, lib/sidecar/cuda_pool.ts)

// The 16 UUID bytes of a device, to find the GPU an engine names by UUID (ordinals differ
// between processes with different CUDA_VISIBLE_DEVICES).
KVH_EXPORT int kvh_device_uuid(int device, uint8_t* out) {
  if (out == 0) return KVH_ERR_INVALID_ARGUMENT;
  memset(out, 0, 16);
  cudaDeviceProp prop;
  cudaError_t err = cudaGetDeviceProperties(&prop, device);
  if (err != cudaSuccess) return (int)err;
  memcpy(out, prop.uuid.bytes, 16);
  return 0;
}

typedef int (*KvhGetAddressRange)(unsigned long long* base, size_t* size, unsigned long long ptr);

// Opens another process's allocation (cudaIpcGetMemHandle of its base) on the current device,
// and reports the allocation's size through the driver's cuMemGetAddressRange, so every range
// kvh scrubs can be checked against it; *out_bytes is 0 when the driver cannot tell.
KVH_EXPORT int kvh_ipc_open(void** out, uint64_t* out_bytes, const void* handle) {
  if (out == 0 || out_bytes == 0 || handle == 0) return KVH_ERR_INVALID_ARGUMENT;
  *out = 0;
  *out_bytes = 0;
  cudaIpcMemHandle_t h;
  memcpy(&h, handle, sizeof(h));
  cudaError_t err = cudaIpcOpenMemHandle(out, h, cudaIpcMemLazyEnablePeerAccess);
  if (err != cudaSuccess) return (int)err;
  void* fn = 0;
  cudaDriverEntryPointQueryResult found;
  if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000, cudaEnableDefault, &found) ==
          cudaSuccess &&
      found == cudaDriverEntryPointSuccess && fn != 0) {
    unsigned long long base = 0;
    size_t size = 0;
    if (((KvhGetAddressRange)fn)(&base, &size, (unsigned long long)*out) == 0) {
      *out_bytes = (uint64_t)size - ((unsigned long long)*out - base);
    }
  }
  return 0;
}

KVH_EXPORT int kvh_ipc_close(void* ptr) { return (int)cudaIpcCloseMemHandle(ptr); }

// The IPC handle of an allocation of this process (kvh_malloc's base), for another process to
// open with kvh_ipc_open: what an engine does with cudaIpcGetMemHandle, used by kvh's GPU tests.
KVH_EXPORT int kvh_ipc_get_handle(void* out, void* ptr) {
  if (out == 0 || ptr == 0) return KVH_ERR_INVALID_ARGUMENT;
  cudaIpcMemHandle_t h;
  cudaError_t err = cudaIpcGetMemHandle(&h, ptr);
  if (err != cudaSuccess) return (int)err;
  memcpy(out, &h, sizeof(h));
  return 0;
}

// Free and total memory of the current device, as the driver reports them (cudaMemGetInfo);
// the sidecar's GPU benchmark measures kvh's own context with it from another process.
KVH_EXPORT int kvh_mem_get_info(uint64_t* free_bytes, uint64_t* total_bytes) {
  if (free_bytes == 0 || total_bytes == 0) return KVH_ERR_INVALID_ARGUMENT;
  size_t f = 0;
  size_t t = 0;
  cudaError_t err = cudaMemGetInfo(&f, &t);
  *free_bytes = (uint64_t)f;
  *total_bytes = (uint64_t)t;
  return (int)err;
}
