#!/usr/bin/env bash
# Load test of `kvh serve-metrics` with wrk (Debian package): 10 s, 2 threads, 32 connections on
# loopback, against a realistic kvh textfile. Prints one markdown table row per case: requests/s,
# p99 latency, non-2xx responses and the server's CPU time per request (from /proc; unlike
# req/s it hardly moves when other jobs share the cores), beside a bare Deno.serve answering the
# same bytes (the ceiling on this machine in the same minute).
#
# Usage: bench/server_bench.sh [seconds]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A textfile shaped like kvh trace's output: gauges, labelled counters and a histogram (~6 KiB).
{
  for name in coverage_min_ratio coverage_avg_ratio reuse_rate; do
    printf '# HELP kvh_%s Gauge.\n# TYPE kvh_%s gauge\nkvh_%s 0.9995\n' "$name" "$name" "$name"
  done
  for name in unsanitized_buffers quarantined_buffers; do
    printf '# HELP kvh_%s Gauge.\n# TYPE kvh_%s gauge\nkvh_%s 0\n' "$name" "$name" "$name"
  done
  printf '# HELP kvh_quarantines_total Quarantines by reason.\n# TYPE kvh_quarantines_total counter\n'
  for reason in coverage ttl reuse cross_tenant verify_failed audit_failed; do
    printf 'kvh_quarantines_total{reason="%s"} 3\n' "$reason"
  done
  printf '# HELP kvh_sanitize_duration_seconds Scrub time.\n# TYPE kvh_sanitize_duration_seconds histogram\n'
  for device in cpu cuda webgpu; do
    for le in 0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 +Inf; do
      printf 'kvh_sanitize_duration_seconds_bucket{device="%s",le="%s"} 1024\n' "$device" "$le"
    done
    printf 'kvh_sanitize_duration_seconds_sum{device="%s"} 1.5\n' "$device"
    printf 'kvh_sanitize_duration_seconds_count{device="%s"} 1024\n' "$device"
  done
  for n in $(seq 1 40); do
    printf 'kvh_policy_violations_total{policy="policy_%02d"} %d\n' "$n" "$n"
  done
} >"$work/metrics.prom"
printf 'bench-token\n' >"$work/token"
chmod 600 "$work/token"

free_port() {
  deno eval 'const l = Deno.listen({ hostname: "127.0.0.1", port: 0 }); console.log(l.addr.port); l.close();'
}

wait_up() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null -H "Authorization: Bearer bench-token" "http://127.0.0.1:$1$2" && return 0
    sleep 0.1
  done
  echo "server on port $1 did not come up" >&2
  exit 1
}

cpu_ticks() { # utime + stime of a process, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

run_wrk() { # label pid url [wrk args]
  local label="$1" pid="$2" url="$3" out before after
  shift 3
  before=$(cpu_ticks "$pid")
  out=$(wrk -t2 -c32 -d"${seconds}s" --latency "$@" "$url")
  after=$(cpu_ticks "$pid")
  local rps p99 non2xx requests cpu_us
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu_us=$(awk -v t="$((after - before))" -v n="$requests" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
  printf '| %s | %s | %s | %s | %s |\n' "$label" "$rps" "$p99" "${non2xx:-0}" "$cpu_us"
}

kvh_port=$(free_port)
deno run --allow-read --allow-net --allow-env cli/main.ts serve-metrics \
  --file "$work/metrics.prom" --port "$kvh_port" 2>"$work/kvh.log" &
kvh_pid=$!
pids+=("$kvh_pid")
token_port=$(free_port)
deno run --allow-read --allow-net --allow-env cli/main.ts serve-metrics \
  --file "$work/metrics.prom" --port "$token_port" --token-file "$work/token" 2>"$work/kvh-token.log" &
token_pid=$!
pids+=("$token_pid")
bare_port=$(free_port)
BENCH_FILE="$work/metrics.prom" BENCH_PORT="$bare_port" deno run --allow-read --allow-net --allow-env - <<'EOF' &
const body = await Deno.readFile(Deno.env.get("BENCH_FILE")!);
const headers = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("BENCH_PORT")), onListen() {} },
  () => new Response(body, { headers }));
EOF
bare_pid=$!
pids+=("$bare_pid")
wait_up "$kvh_port" /metrics
wait_up "$token_port" /metrics
wait_up "$bare_port" /

echo "wrk: ${seconds} s, 2 threads, 32 connections, loopback; file $(wc -c <"$work/metrics.prom") bytes"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; $(deno --version | head -n 1)"
echo
echo "| case | req/s | p99 | non-2xx | server CPU µs/req |"
echo "|---|---|---|---|---|"
run_wrk "bare Deno.serve, same bytes (ceiling)" "$bare_pid" "http://127.0.0.1:$bare_port/"
run_wrk "kvh serve-metrics GET /metrics" "$kvh_pid" "http://127.0.0.1:$kvh_port/metrics"
run_wrk "kvh serve-metrics GET /metrics, gzip" "$kvh_pid" "http://127.0.0.1:$kvh_port/metrics" \
  -H "Accept-Encoding: gzip"
run_wrk "kvh serve-metrics GET /metrics, bearer token" "$token_pid" \
  "http://127.0.0.1:$token_port/metrics" -H "Authorization: Bearer bench-token"
run_wrk "kvh serve-metrics GET /healthz" "$kvh_pid" "http://127.0.0.1:$kvh_port/healthz"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
