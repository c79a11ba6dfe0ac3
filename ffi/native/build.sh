#!/usr/bin/env bash
# Builds the native helpers into ffi/native/build/:
# - libkvh_cpu.so, the CPU scrub helper lib/sanitize/native.ts loads. Portable x86-64 code: the
#   AVX2 read-back is picked at load time when the CPU has it.
# - libkvh_hash.so, the batch digest checker lib/forensic/_native_digest.ts loads. It links
#   OpenSSL's libcrypto, so it is built only where its headers exist (Debian: libssl-dev);
#   without it verify hashes through node:crypto.
# - libkvh_pool.so, the pool file helper lib/sidecar/native_pool.ts loads: `kvh trace --listen`
#   reaches pools under /dev/shm through it with kvh's named permissions (Deno grants files
#   under /dev only to `deno run -A`).
set -euo pipefail
cd "$(dirname "$0")"
CC="${CC:-cc}"
CFLAGS=(-O3 -std=gnu99 -shared -fPIC -fvisibility=hidden -Wall -Wextra -Werror)
mkdir -p build
"$CC" "${CFLAGS[@]}" -pthread -o build/libkvh_cpu.so.tmp kvh_cpu.c
mv build/libkvh_cpu.so.tmp build/libkvh_cpu.so
echo "built $(pwd)/build/libkvh_cpu.so"
"$CC" "${CFLAGS[@]}" -o build/libkvh_pool.so.tmp kvh_pool.c
mv build/libkvh_pool.so.tmp build/libkvh_pool.so
echo "built $(pwd)/build/libkvh_pool.so"
if echo '#include <openssl/sha.h>' | "$CC" -E -x c - >/dev/null 2>&1; then
  "$CC" "${CFLAGS[@]}" -pthread -o build/libkvh_hash.so.tmp kvh_hash.c -lcrypto
  mv build/libkvh_hash.so.tmp build/libkvh_hash.so
  echo "built $(pwd)/build/libkvh_hash.so"
else
  rm -f build/libkvh_hash.so
  echo "skipped libkvh_hash.so: no OpenSSL headers (install libssl-dev); verify hashes in TS" >&2
fi
