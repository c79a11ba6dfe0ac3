#!/usr/bin/env bash
# Builds ffi/native/build/libkvh_cpu.so, the CPU scrub helper lib/sanitize/native.ts loads.
# Portable x86-64 code: the AVX2 read-back is picked at load time when the CPU has it.
set -euo pipefail
cd "$(dirname "$0")"
CC="${CC:-cc}"
mkdir -p build
"$CC" -O3 -std=gnu99 -shared -fPIC -fvisibility=hidden -pthread -Wall -Wextra -Werror \
  -o build/libkvh_cpu.so.tmp kvh_cpu.c
mv build/libkvh_cpu.so.tmp build/libkvh_cpu.so
echo "built $(pwd)/build/libkvh_cpu.so"
