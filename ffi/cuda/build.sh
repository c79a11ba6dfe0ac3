#!/usr/bin/env bash
# Builds ffi/cuda/build/libkvh_cuda.so, the library ffi/cuda/binding.ts loads.
#
# The CUDA runtime is linked statically (-cudart static) so the library needs only the NVIDIA
# driver (libcuda.so.1) at run time, not a CUDA toolkit. SASS for sm_80 (A100) and sm_90
# (H100/H200), plus compute_90 PTX that the driver JIT-compiles for newer GPUs. CUDA 13 still
# supports sm_80 (it dropped sm_50-sm_72); set KVH_CUDA_GENCODE to build other targets.
set -euo pipefail
cd "$(dirname "$0")"
NVCC="${NVCC:-nvcc}"
gencode=(${KVH_CUDA_GENCODE:--gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90})
mkdir -p build
"$NVCC" -O3 -shared -Xcompiler -fPIC -Xcompiler -fvisibility=hidden -cudart static \
  "${gencode[@]}" -o build/libkvh_cuda.so.tmp kvh_cuda.cu
mv build/libkvh_cuda.so.tmp build/libkvh_cuda.so
echo "built $(pwd)/build/libkvh_cuda.so"
