// kvh's pool file helper, loaded by lib/sidecar/native_pool.ts through Deno.dlopen: the file
// work of the sidecar's CPU pools (resolve, stat, open, scrub, close). The scrubs of one batch
// of releases (the request lines of one socket read) come in one call, size checks included:
// for a 16 KiB release the calls themselves cost about as much as its two system calls. Deno grants files under
// /dev, where shared-memory pools live (/dev/shm), only to a process holding every permission;
// calls through FFI are not path-checked, so kvh's named permissions (--allow-ffi among them)
// reach those pools through this library. The checks on what a pool may be stay in TypeScript
// (lib/sidecar/cpu_pool.ts); this file only does the system calls.
//
// Positioned I/O only, never mmap: a store past the end of a mapping of a file that shrank is
// SIGBUS, while a short pread is an ordinary result the caller turns into a quarantine.
//
// Every call returns 0 (or a descriptor, or a length) on success and -errno on failure, so the
// binding needs no struct layout: stat results are written as five u64 values.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KVH_POOL_ABI_VERSION 3
#define EXPORT __attribute__((visibility("default")))

// Outcomes of one scrub besides 0 (done) and -errno: a read-back ended early (the file shrank
// under the scrub); the file was removed; the file is shorter than the registered pool.
#define KVH_POOL_SHORT 1
#define KVH_POOL_GONE 2
#define KVH_POOL_SMALL 3

enum { CHUNK_BYTES = 1 << 20 };

EXPORT uint32_t kvh_pool_abi_version(void) { return KVH_POOL_ABI_VERSION; }

// out: device, inode, link count, size, st_mode.
static void put_stat(const struct stat *st, uint64_t out[5]) {
  out[0] = (uint64_t)st->st_dev;
  out[1] = (uint64_t)st->st_ino;
  out[2] = (uint64_t)st->st_nlink;
  out[3] = (uint64_t)st->st_size;
  out[4] = (uint64_t)st->st_mode;
}

// The resolved path (NUL-terminated) into out; returns its length, -ENAMETOOLONG when out is
// too small, or -errno.
EXPORT int32_t kvh_pool_realpath(const char *path, char *out, uint32_t out_len) {
  char *real = realpath(path, NULL);
  if (real == NULL) return -errno;
  size_t n = strlen(real);
  if (n + 1 > out_len) {
    free(real);
    return -ENAMETOOLONG;
  }
  memcpy(out, real, n + 1);
  free(real);
  return (int32_t)n;
}

// stat (follow != 0) or lstat of path into out.
EXPORT int32_t kvh_pool_stat(const char *path, uint32_t follow, uint64_t out[5]) {
  struct stat st;
  if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) return -errno;
  put_stat(&st, out);
  return 0;
}

// A read-write descriptor of path, never through a symlink in its last component.
EXPORT int32_t kvh_pool_open(const char *path) {
  int fd;
  do fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

EXPORT int32_t kvh_pool_fstat(int32_t fd, uint64_t out[5]) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  put_stat(&st, out);
  return 0;
}

EXPORT int32_t kvh_pool_close(int32_t fd) { return close(fd) != 0 ? -errno : 0; }

static int write_all(int fd, const uint8_t *bytes, size_t n, uint64_t offset) {
  for (size_t done = 0; done < n;) {
    ssize_t w = pwrite(fd, bytes + done, n - done, (off_t)(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    if (w == 0) return -EIO;
    done += (size_t)w;
  }
  return 0;
}

static int read_all(int fd, uint8_t *bytes, size_t n, uint64_t offset) {
  for (size_t done = 0; done < n;) {
    ssize_t r = pread(fd, bytes + done, n - done, (off_t)(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r == 0) return KVH_POOL_SHORT;
    done += (size_t)r;
  }
  return 0;
}

static uint64_t count_nonzero(const uint8_t *p, size_t n) {
  uint64_t count = 0;
  for (size_t i = 0; i < n; i++) count += p[i] != 0;
  return count;
}

// The source of every zeroing write. Never written, so it stays in .bss and its pages are the
// kernel's shared zero page; a calloc of a chunk per call cost more than the scrub of a small
// block itself (an mmap, page faults and a munmap for every 16 KiB release).
static uint8_t zeros[CHUNK_BYTES];

// Zeroes each of the n ranges (ranges[2i] offset, ranges[2i+1] length) `passes` times, then
// reads every byte back through `back` (capacity bytes): out[0] += bytes read back, out[1] +=
// those not zero. Returns 0, KVH_POOL_SHORT when a read-back hit the end of the file, or -errno.
static int scrub_ranges(int fd, const double *ranges, uint64_t n, uint64_t passes,
                        uint8_t *back, size_t capacity, int64_t out[2]) {
  int rc = 0;
  for (uint64_t pass = 0; rc == 0 && pass < passes; pass++) {
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
      uint64_t offset = (uint64_t)ranges[2 * i], length = (uint64_t)ranges[2 * i + 1];
      for (uint64_t done = 0; rc == 0 && done < length;) {
        uint64_t left = length - done;
        size_t step = left < CHUNK_BYTES ? (size_t)left : CHUNK_BYTES;
        rc = write_all(fd, zeros, step, offset + done);
        done += step;
      }
    }
  }
  for (uint64_t i = 0; rc == 0 && i < n; i++) {
    uint64_t offset = (uint64_t)ranges[2 * i], length = (uint64_t)ranges[2 * i + 1];
    for (uint64_t done = 0; rc == 0 && done < length;) {
      uint64_t left = length - done;
      size_t step = left < capacity ? (size_t)left : capacity;
      rc = read_all(fd, back, step, offset + done);
      if (rc == 0) {
        out[0] += (int64_t)step;
        out[1] += (int64_t)count_nonzero(back, step);
      }
      done += step;
    }
  }
  return rc;
}

// One scrub of one pool file: the file is checked first (still linked, at least the registered
// size: a release never writes into a pool that shrank or is gone), then its ranges are zeroed
// and read back.
static int64_t scrub_job(const int64_t job[5], const double *ranges, uint8_t *back,
                         size_t capacity, int64_t out[4]) {
  struct stat st;
  if (fstat((int)job[0], &st) != 0) return -errno;
  out[3] = (int64_t)st.st_size;
  if (st.st_nlink == 0) return KVH_POOL_GONE;
  if (st.st_size < job[1]) return KVH_POOL_SMALL;
  return scrub_ranges((int)job[0], ranges + 2 * job[2], (uint64_t)job[3], (uint64_t)job[4], back,
                      capacity, out + 1);
}

// Runs n scrubs in order. jobs[5i..5i+4]: descriptor, registered bytes, index of the job's first
// range in `ranges` (ranges[2r] offset, ranges[2r+1] length), number of ranges, passes.
// out[4i..4i+3]: outcome (0, KVH_POOL_SHORT, KVH_POOL_GONE, KVH_POOL_SMALL or -errno), bytes
// read back, of them not zero, the file's size. Each job has its own outcome: one that fails
// does not stop the others. Returns 0, or -ENOMEM with no job run.
// The tables are doubles: every value is an integer of magnitude below 2^53 (descriptors,
// counts, offsets and sizes of pools kvh checked), which a double holds exactly, so the binding
// fills plain Float64Arrays instead of making a BigInt of every value (ABI 3).
EXPORT int32_t kvh_pool_scrub_batch(const double *jobs, uint32_t n, const double *ranges,
                                    double *out) {
  // The read-back buffer is as large as the largest range needs, up to a chunk: small releases
  // get it from the heap's free lists instead of a fresh mapping.
  uint64_t largest = 1;
  for (uint32_t j = 0; j < n; j++) {
    uint64_t first = (uint64_t)jobs[5 * j + 2], count = (uint64_t)jobs[5 * j + 3];
    for (uint64_t i = first; i < first + count; i++) {
      if ((uint64_t)ranges[2 * i + 1] > largest) largest = (uint64_t)ranges[2 * i + 1];
    }
  }
  size_t capacity = largest < CHUNK_BYTES ? (size_t)largest : CHUNK_BYTES;
  uint8_t *back = malloc(capacity);
  if (back == NULL) return -ENOMEM;
  for (uint32_t j = 0; j < n; j++) {
    int64_t job[5], o[4] = {0, 0, 0, 0};
    for (int k = 0; k < 5; k++) job[k] = (int64_t)jobs[5 * j + k];
    o[0] = scrub_job(job, ranges, back, capacity, o);
    for (int k = 0; k < 4; k++) out[4 * j + k] = (double)o[k];
  }
  free(back);
  return 0;
}

// The system's message for errno e (positive) into out, NUL-terminated.
EXPORT void kvh_pool_strerror(int32_t e, char *out, uint32_t out_len) {
  if (out_len == 0) return;
  const char *text = strerror(e);
  size_t n = strlen(text);
  if (n >= out_len) n = out_len - 1;
  memcpy(out, text, n);
  out[n] = '\0';
}
