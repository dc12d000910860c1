#!/usr/bin/env bash
# The read paths at scale (docs/benchmarks.md, "Reads at scale"): for each size in SIZES, a fresh
# database filled by `pulse-bench load` (synthetic analysed posts over 30 days), the platform
# started on it (scripts/up.sh; generator off, rate limit off, the distribution cache off so
# every request reaches PostgreSQL), then `wrk -t2 -c64` on every read the dashboard makes,
# each after 3 s of the same load to warm it up.
# Output goes to the terminal and to .run/bench/reads.txt.
#
#   SIZES         posts per run, space-separated (default "100000 10000000")
#   WRK_SECONDS   seconds per endpoint (default 15)
#   KEEP=1        leave the last database (pulse_bench_reads) in place
#   REUSE=1       measure the database left by KEEP=1 (one size) instead of loading a new one
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/.run/bench"
mkdir -p "$out"
results="$out/reads.txt"
sizes=${SIZES:-"100000 10000000"}
wrk_seconds=${WRK_SECONDS:-15}

log() { printf '\033[1m[bench-reads]\033[0m %s\n' "$*" >&2; }
command -v wrk >/dev/null || { echo "wrk is missing: install the Debian package wrk" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is missing: install the Debian package jq" >&2; exit 1; }

export DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/pulse_bench_reads
export STREAM_PREFIX=pulse-bench-reads
export POSTS_PER_MINUTE=0
export RATE_LIMIT_REQUESTS=0
# Reads without a key (wrk, curl and the WebSocket clients send none); writes go through gRPC.
export PUBLIC_READS=true
export DISTRIBUTION_CACHE_TTL_SECS=0
export RUST_LOG=warn
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/.deps/onnxruntime/libonnxruntime.so.1.31.1}
gateway=http://127.0.0.1:${GATEWAY_PORT:-8080}

log "building (release)"
cargo build --release --locked --bins
bench="$root/target/release/pulse-bench"
trap 'scripts/down.sh >/dev/null 2>&1 || true' EXIT

measure() { # name, path; 3 s of warm-up (connections, prepared statements, caches) first
  echo "### $1: $2"
  wrk -t2 -c64 -d3s "$gateway$2" >/dev/null
  wrk -t2 -c64 -d"${wrk_seconds}s" --latency "$gateway$2" |
    grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors' | sed 's/^/    /'
}

iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

{
  echo "# Pulse reads at scale, $(date -u +'%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)"
  echo "# machine: $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB; wrk -t2 -c64 -d${wrk_seconds}s"
  for n in $sizes; do
    scripts/down.sh >/dev/null 2>&1 || true
    echo
    echo "## $n posts over 30 days"
    if [ "${REUSE:-0}" = 1 ]; then
      psql "$DATABASE_URL" -Atc "SELECT 'reused: ' || count(*) || ' posts' FROM post_keys"
    else
      dropdb -h 127.0.0.1 -U postgres --if-exists pulse_bench_reads
      "$bench" load --posts "$n" --days 30 2>/dev/null
    fi
    psql "$DATABASE_URL" -Atc "SELECT 'database size: ' || pg_size_pretty(pg_database_size(current_database()))"
    scripts/up.sh >"$out/up-reads.log" 2>&1 || { tail -n 30 "$out/up-reads.log"; exit 1; }
    week=$(iso '7 days ago')
    month=$(iso '30 days ago')
    deep_to=$(iso '20 days ago')
    # A cursor 20 days deep: the page after the last post of the first page before that time.
    deep=$(curl -fsS "$gateway/api/posts?limit=50&to=$deep_to" | jq -r .metadata.next_cursor)
    measure "aggregate, 24 h hourly" "/api/sentiment/aggregate?bucket=hour"
    measure "aggregate, 7 d daily" "/api/sentiment/aggregate?bucket=day&from=$week"
    measure "aggregate, 30 d daily" "/api/sentiment/aggregate?bucket=day&from=$month"
    measure "distribution, all time, uncached" "/api/sentiment/distribution"
    measure "distribution, 24 h, uncached" "/api/sentiment/distribution?from=$(iso '24 hours ago')"
    measure "posts, first page" "/api/posts?limit=50"
    measure "posts, a cursor page 20 days deep" "/api/posts?limit=50&cursor=$deep"
    measure "posts, search 'battery' (24 h)" "/api/posts?limit=50&search=battery&from=$(iso '24 hours ago')"
    measure "posts, search 'drains' (no match, 30 d)" "/api/posts?limit=50&search=drains"
  done
} 2>&1 | tee "$results"
if [ "${KEEP:-0}" != 1 ]; then
  scripts/down.sh >/dev/null 2>&1 || true
  dropdb -h 127.0.0.1 -U postgres --if-exists pulse_bench_reads
fi
log "results in $results"
