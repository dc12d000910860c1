#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md in one run on this machine: builds release, brings the
# platform up on its own database and stream prefix (scripts/up.sh; generator off, rate limit
# off, per-address live-feed cap above the fan-out's clients, logs at warn), then measures
#   1. the raw model ceiling and the inference service under gRPC load (pulse-bench inference),
#   2. the mesh end to end as fast as backpressure allows, at the seed's 60 posts/min, and at
#      half the maximum just measured (pulse-bench mesh),
#   3. the gateway under wrk (cached distribution, a page of posts, the aggregate),
#   4. WebSocket fan-out to 1,000 clients (pulse-bench fanout),
# and the resident memory of every service at rest and at its peak during 2-4.
# Output goes to the terminal and to .run/bench/results.txt. Takes about 10 minutes.
#
#   BENCH_SECONDS   seconds per mesh measurement (default 60)
#   WRK_SECONDS     seconds per wrk endpoint (default 15)
#   FANOUT_CLIENTS  WebSocket clients (default 1000)
#   INFERENCE_SECONDS  seconds per inference measurement (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/.run/bench"
mkdir -p "$out"
results="$out/results.txt"
seconds=${BENCH_SECONDS:-60}
wrk_seconds=${WRK_SECONDS:-15}
fanout_clients=${FANOUT_CLIENTS:-1000}

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || { echo "wrk is missing: install the Debian package wrk" >&2; exit 1; }
  log "installing Debian's wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
fi

if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  # A fresh database each run, so every run starts from the same empty tables.
  dropdb -h 127.0.0.1 -U postgres --if-exists pulse_bench 2>/dev/null || true
fi
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/pulse_bench}
export STREAM_PREFIX=pulse-bench
export POSTS_PER_MINUTE=0
export RATE_LIMIT_REQUESTS=0
# The fan-out's clients all connect from 127.0.0.1; the gateway's per-address cap would refuse
# all but the first 20 (429 TOO_MANY_CONNECTIONS). It cannot be turned off (0 refuses every
# connection), so it goes above the client count, with room for a mesh run's socket that is
# still closing.
export WS_MAX_PER_CLIENT=$((fanout_clients + 16))
# Reads without a key (wrk, curl and the WebSocket clients send none); writes go through gRPC.
export PUBLIC_READS=true
export RUST_LOG=warn
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/.deps/onnxruntime/libonnxruntime.so.1.31.1}
# 1,000 sockets on each side of the fan-out.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log "building pulse-bench (release)"
cargo build --release --locked -p pulse-bench
log "starting the platform (scripts/up.sh)"
scripts/up.sh >"$out/up.log" 2>&1 || { tail -n 30 "$out/up.log"; exit 1; }
trap 'scripts/down.sh >/dev/null 2>&1 || true' EXIT
bench="$root/target/release/pulse-bench"
gateway=http://127.0.0.1:${GATEWAY_PORT:-8080}

services=(pulse-inference pulse-analytics pulse-worker pulse-ingester pulse-gateway)
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$(cat "$root/.run/$1.pid")/status" 2>/dev/null || echo 0; }
# Samples every service's RSS twice a second; the peak of each goes to $out/rss-peak.
sample_rss() {
  declare -A peak
  while :; do
    for s in "${services[@]}"; do
      v=$(rss_kb "$s")
      [ "${v:-0}" -gt "${peak[$s]:-0}" ] && peak[$s]=$v
    done
    for s in "${services[@]}"; do echo "$s ${peak[$s]:-0}"; done >"$out/rss-peak.tmp"
    mv "$out/rss-peak.tmp" "$out/rss-peak"
    sleep 0.5
  done
}

{
  echo "# Pulse benchmarks, $(date -u +'%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)"
  echo "# machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo
  sleep 5
  echo "## resident memory at rest (MiB)"
  for s in "${services[@]}"; do printf '  %-16s %6.1f\n' "$s" "$(echo "$(rss_kb "$s") / 1024" | bc -l)"; done
  echo
  echo "## 1. inference: raw ceiling and gRPC service"
  "$bench" inference --seconds "${INFERENCE_SECONDS:-10}"
  echo
} 2>&1 | tee "$results"

sample_rss &
sampler=$!
trap 'kill $sampler 2>/dev/null; scripts/down.sh >/dev/null 2>&1 || true' EXIT

{
  echo "## 2a. mesh, as fast as backpressure allows, ${seconds} s"
  "$bench" mesh --seconds "$seconds" | tee "$out/mesh-max.txt"
  max=$(awk '/^sustained/ {print $2}' "$out/mesh-max.txt")
  echo
  echo "## 2b. mesh at the seed's default rate (60 posts/min), ${seconds} s"
  "$bench" mesh --seconds "$seconds" --rate 1 --warm-up-seconds 0
  echo
  half=$(echo "$max / 2" | bc -l | xargs printf '%.1f')
  echo "## 2c. mesh at half the maximum ($half posts/s), ${seconds} s"
  "$bench" mesh --seconds "$seconds" --rate "$half" --warm-up-seconds 0
  echo
  # The mesh runs just loaded ~100k rows; PostgreSQL plans the read queries from statistics,
  # which autovacuum would gather on its own (it is off on the project's machines).
  psql "$DATABASE_URL" -qc 'ANALYZE' >/dev/null
  echo "## 3. gateway under wrk (2 threads, 64 connections, ${wrk_seconds} s each)"
  curl -fsS "$gateway/api/sentiment/distribution" >/dev/null
  for path in /api/sentiment/distribution '/api/posts?limit=50' /api/sentiment/aggregate; do
    echo "### $path"
    wrk -t2 -c64 -d"${wrk_seconds}s" --latency "$gateway$path" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|Socket errors'
  done
  echo
  echo "## 4. WebSocket fan-out"
  "$bench" fanout --clients "$fanout_clients" --posts 100 --rate 10
  echo
  sleep 1
  echo "## resident memory, peak during 2-4 (MiB)"
  while read -r s kb; do printf '  %-16s %6.1f\n' "$s" "$(echo "$kb / 1024" | bc -l)"; done <"$out/rss-peak"
} 2>&1 | tee -a "$results"
log "results in $results"
