#!/usr/bin/env bash
# The CUDA checks and figures in one command, for a Linux machine with an NVIDIA GPU and no
# network. Bring along this checkout with its node_modules (deno install --frozen, done where
# the network is) and a Deno binary (xz -d it first if it travelled compressed), then:
#
#   bench/gpu/run.sh [--deno PATH] [--skip-build] RESULTS_DIR
#
# It builds the CUDA library (ffi/cuda/build.sh, needs nvcc; --skip-build uses the library
# already in ffi/cuda/build/), runs the CUDA tests, runs `kvh sanitize-bench --device cuda` at
# 64 MiB and 1 GiB (and 16 GiB when the GPU has 36 GiB free: the roofline copies between two
# buffers of the size) and with --blocks 16384x64KiB, and writes RESULTS_DIR/gpu.md: GPU model,
# driver, each step with its status, exit code and time, and the figures. Every step has its own
# timeout; all of them together stay under 5 minutes.
#
# Exit codes: 0 every step passed; 1 usage error (no RESULTS_DIR, no Deno binary, unknown
# flag); 2 a step failed or timed out (gpu.md says which); 3 no NVIDIA GPU found (gpu.md says
# so and nothing else ran).
set -uo pipefail

usage() {
  echo "usage: bench/gpu/run.sh [--deno PATH] [--skip-build] RESULTS_DIR" >&2
  exit 1
}

deno_bin="${DENO:-$(command -v deno || true)}"
skip_build=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --deno) [ $# -ge 2 ] || usage; deno_bin="$2"; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    -*) usage ;;
    *) [ -z "$out" ] || usage; out="$1"; shift ;;
  esac
done
[ -n "$out" ] || usage
mkdir -p "$out" || usage
out="$(cd "$out" && pwd)"
report="$out/gpu.md"
cd "$(dirname "$0")/../.." || exit 1
export NO_COLOR=1 DENO_NO_UPDATE_CHECK=1

# Per-step limits in seconds (sum 285, under the 5-minute budget with the probes).
LIMIT_BUILD="${KVH_GPU_LIMIT_BUILD:-100}"
LIMIT_TESTS="${KVH_GPU_LIMIT_TESTS:-60}"
LIMIT_BENCH="${KVH_GPU_LIMIT_BENCH:-90}"
LIMIT_BLOCKS="${KVH_GPU_LIMIT_BLOCKS:-35}"

{
  echo "# kvh on a GPU"
  echo
  echo "Produced by \`bench/gpu/run.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), host $(uname -n),"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
} >"$report"

gpu=$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.free \
  --format=csv,noheader,nounits 2>/dev/null | head -n 1)
if [ -z "$gpu" ]; then
  echo "No NVIDIA GPU: \`nvidia-smi\` is missing or lists no device. Nothing else ran." >>"$report"
  echo "kvh: gpu run: no NVIDIA GPU found; wrote $report" >&2
  exit 3
fi
IFS=',' read -r model driver total_mib free_mib <<<"$gpu"
trim() { sed -E 's/^ +| +$//g' <<<"$1"; }
model=$(trim "$model")
driver=$(trim "$driver")
total_mib=$(trim "$total_mib")
free_mib=$(trim "$free_mib")
sizes="64MiB,1GiB"
if [ "${free_mib:-0}" -ge $((36 * 1024)) ] 2>/dev/null; then sizes="$sizes,16GiB"; fi
{
  echo "GPU: $model, driver $driver, ${total_mib} MiB (${free_mib} MiB free at start)."
  echo "CUDA toolkit: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'no nvcc')."
  echo "Deno: $("$deno_bin" --version 2>/dev/null | head -n 1 || echo "not runnable: $deno_bin")."
  echo
  echo "| step | status | exit code | seconds | limit |"
  echo "|---|---|---|---|---|"
} >>"$report"
if [ -z "$deno_bin" ] || ! "$deno_bin" --version >/dev/null 2>&1; then
  echo "kvh: gpu run: no runnable Deno binary (give --deno PATH)" >&2
  exit 1
fi

failed=0
logs="$out/gpu-logs"
mkdir -p "$logs"
# step NAME LIMIT CMD...: runs CMD under its timeout, output to $logs/NAME.log, one table row.
step() {
  local name="$1" limit="$2" start code status tenths
  shift 2
  start=$(date +%s%N)
  timeout --kill-after=5 "$limit" "$@" >"$logs/$name.log" 2>&1
  code=$?
  case $code in
    0) status=pass ;;
    124 | 137) status="timed out"; failed=1 ;;
    *) status=fail; failed=1 ;;
  esac
  tenths=$((($(date +%s%N) - start) / 100000000))
  echo "| $name | $status | $code | $((tenths / 10)).$((tenths % 10)) | $limit |" >>"$report"
  return $code
}

kvh=("$deno_bin" run --allow-all --quiet cli/main.ts)
if [ "$skip_build" -eq 1 ]; then
  echo "| build | skipped (--skip-build) | | | |" >>"$report"
else
  step build "$LIMIT_BUILD" ffi/cuda/build.sh
fi
step tests "$LIMIT_TESTS" "$deno_bin" test --allow-all tests/sanitize/cuda_test.ts
step bench "$LIMIT_BENCH" "${kvh[@]}" sanitize-bench --device cuda --sizes "$sizes" --json
step blocks "$LIMIT_BLOCKS" "${kvh[@]}" sanitize-bench --device cuda --blocks 16384x64KiB --json

{
  echo
  echo "CUDA tests: $(grep -E '^(ok|FAILED) \|' "$logs/tests.log" | tail -n 1 || echo 'no summary')"
  grep -q 'ignored' "$logs/tests.log" 2>/dev/null &&
    echo "(tests ignored on a GPU machine mean a device check did not run: see gpu-logs/tests.log)"
  for name in bench blocks; do
    echo
    echo "## sanitize-bench --device cuda ($name)"
    echo
    echo '```json'
    # The report is the one JSON document on stdout; progress went to stderr.
    grep -E '^\{' "$logs/$name.log" | tail -n 1 || true
    echo '```'
  done
  echo
  echo "Full output of every step: gpu-logs/ beside this file."
} >>"$report"

echo "kvh: gpu run: wrote $report" >&2
exit $((failed ? 2 : 0))
