// kvh's CPU scrub helper, loaded by lib/sanitize/native.ts through Deno.dlopen: zeroing and
// full read-back of large buffers split across threads, so both DRAM directions and every
// core's outstanding misses are used. The pure-TS kernels of lib/sanitize/cpu.ts remain the
// fallback when this library is absent. C99 + pthreads; x86-64 gets non-temporal stores and an
// AVX2 read-back when the CPU has it; other targets use memset and a word loop.
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define KVH_CPU_ABI_VERSION 2
#define KVH_MAX_THREADS 64

#define EXPORT __attribute__((visibility("default")))

EXPORT uint32_t kvh_cpu_abi_version(void) { return KVH_CPU_ABI_VERSION; }

static uint64_t count_bytes(const uint8_t *p, size_t n) {
  uint64_t count = 0;
  for (size_t i = 0; i < n; i++) count += p[i] != 0;
  return count;
}

static int block_is_zero_words(const uint8_t *p, size_t n) {
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t x0, x1, x2, x3;
    memcpy(&x0, p + i, 8);
    memcpy(&x1, p + i + 8, 8);
    memcpy(&x2, p + i + 16, 8);
    memcpy(&x3, p + i + 24, 8);
    a0 |= x0;
    a1 |= x1;
    a2 |= x2;
    a3 |= x3;
  }
  uint64_t acc = a0 | a1 | a2 | a3;
  for (; i < n; i++) acc |= p[i];
  return acc == 0;
}

#if defined(__x86_64__)
// 32-byte loads nearly double one core's read bandwidth over the compiler's SSE2 loop here.
__attribute__((target("avx2"))) static int block_is_zero_avx2(const uint8_t *p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    a0 = _mm256_or_si256(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
    a1 = _mm256_or_si256(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
    a2 = _mm256_or_si256(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
    a3 = _mm256_or_si256(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
  }
  __m256i acc = _mm256_or_si256(_mm256_or_si256(a0, a1), _mm256_or_si256(a2, a3));
  return _mm256_testz_si256(acc, acc) && block_is_zero_words(p + i, n - i);
}
#endif

static int (*block_is_zero)(const uint8_t *, size_t) = block_is_zero_words;

__attribute__((constructor)) static void pick_kernels(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) block_is_zero = block_is_zero_avx2;
#endif
}

// Whole 4 KiB blocks are OR-reduced; exact bytes are counted only in blocks that are not all
// zero, so a clean buffer costs one read.
static uint64_t count_nonzero(const uint8_t *p, size_t n) {
  const size_t block = 4096;
  uint64_t count = 0;
  for (size_t i = 0; i < n; i += block) {
    size_t len = n - i < block ? n - i : block;
    if (!block_is_zero(p + i, len)) count += count_bytes(p + i, len);
  }
  return count;
}

// Non-temporal stores: the buffers this helper gets are larger than the cache, so plain stores
// would read every line from DRAM (read-for-ownership) only to evict it again.
static void zero_stream(uint8_t *p, size_t n) {
#if defined(__x86_64__)
  size_t head = (16 - ((uintptr_t)p & 15)) & 15;
  if (head > n) head = n;
  memset(p, 0, head);
  p += head;
  n -= head;
  __m128i z = _mm_setzero_si128();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm_stream_si128((__m128i *)(p + i), z);
    _mm_stream_si128((__m128i *)(p + i + 16), z);
    _mm_stream_si128((__m128i *)(p + i + 32), z);
    _mm_stream_si128((__m128i *)(p + i + 48), z);
  }
  memset(p + i, 0, n - i);
  // Non-temporal stores are weakly ordered: fence before the caller reads the bytes back.
  _mm_sfence();
#else
  memset(p, 0, n);
#endif
}

// Chunk of the fused zero + verify: small enough to stay in a core's L2 between the zeroing
// and the read-back.
#define FUSED_CHUNK (256 * 1024)

// Plain (cached) zeroing of one chunk. On x86-64 `rep stosb` (fast strings) writes whole lines
// without reading them first and leaves them in cache, so the read-back that follows costs no
// DRAM traffic: the buffer crosses memory once, on write-back.
static void zero_cached(uint8_t *p, size_t n) {
#if defined(__x86_64__)
  __asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(0) : "memory");
#else
  memset(p, 0, n);
  // The read-back must read memory, not what the compiler knows memset wrote.
  __asm__ volatile("" ::: "memory");
#endif
}

// Zeroes and reads back chunk by chunk, each chunk verified while it is still in cache.
static uint64_t zero_verify(uint8_t *p, size_t n) {
  uint64_t nonzero = 0;
  for (size_t i = 0; i < n; i += FUSED_CHUNK) {
    size_t len = n - i < FUSED_CHUNK ? n - i : FUSED_CHUNK;
    zero_cached(p + i, len);
    nonzero += count_nonzero(p + i, len);
  }
  return nonzero;
}

enum mode { ZERO, COUNT, ZERO_VERIFY };

struct task {
  uint8_t *p;
  size_t n;
  enum mode mode;
  uint64_t nonzero;
};

static void run_task(struct task *t) {
  if (t->mode == COUNT) t->nonzero = count_nonzero(t->p, t->n);
  else if (t->mode == ZERO_VERIFY) t->nonzero = zero_verify(t->p, t->n);
  else zero_stream(t->p, t->n);
}

static void *thread_main(void *arg) {
  run_task((struct task *)arg);
  return NULL;
}

// Splits [p, p+n) into `threads` parts on 4 KiB boundaries; the calling thread does the first.
// A part whose thread cannot be started is done by the caller, so the result never depends on
// thread creation succeeding.
static uint64_t run(uint8_t *p, uint64_t n, uint32_t threads, enum mode mode) {
  if (threads < 1) threads = 1;
  if (threads > KVH_MAX_THREADS) threads = KVH_MAX_THREADS;
  struct task tasks[KVH_MAX_THREADS];
  pthread_t ids[KVH_MAX_THREADS];
  int started[KVH_MAX_THREADS];
  size_t part = ((n / threads) + 4095) & ~(size_t)4095;
  size_t offset = 0;
  for (uint32_t t = 0; t < threads; t++) {
    size_t rest = n - offset;
    size_t len = t == threads - 1 || rest < part ? rest : part;
    tasks[t] = (struct task){p + offset, len, mode, 0};
    offset += len;
  }
  for (uint32_t t = 1; t < threads; t++) {
    started[t] = tasks[t].n > 0 && pthread_create(&ids[t], NULL, thread_main, &tasks[t]) == 0;
  }
  run_task(&tasks[0]);
  uint64_t nonzero = tasks[0].nonzero;
  for (uint32_t t = 1; t < threads; t++) {
    if (started[t]) pthread_join(ids[t], NULL);
    else run_task(&tasks[t]);
    nonzero += tasks[t].nonzero;
  }
  return nonzero;
}

/** Sets the n bytes at p to zero on `threads` threads, with non-temporal stores. */
EXPORT void kvh_cpu_zero(uint8_t *p, uint64_t n, uint32_t threads) { run(p, n, threads, ZERO); }

/** Counts the bytes at p that are not zero, on `threads` threads. */
EXPORT uint64_t kvh_cpu_count_nonzero(uint8_t *p, uint64_t n, uint32_t threads) {
  return run(p, n, threads, COUNT);
}

/**
 * Zeroes the n bytes at p and counts those that are not zero afterwards, on `threads`
 * threads, each part in cache-sized chunks read back right after they are zeroed: about one
 * pass over memory instead of two.
 */
EXPORT uint64_t kvh_cpu_zero_verify(uint8_t *p, uint64_t n, uint32_t threads) {
  return run(p, n, threads, ZERO_VERIFY);
}
