#!/usr/bin/env bash
# The insights' costs (docs/benchmarks.md, "Insights"):
#   1. the mesh with term extraction off and on: `pulse-bench mesh` on a fresh database each run,
#      the platform started by scripts/up.sh with INSIGHTS_TERMS=false and =true alternated,
#      with PostgreSQL's CPU seconds over each run;
#   2. the drivers and entities queries over the term rollups of 48 hours at RATE posts/s, for
#      each long-tail size in EXTRA_TERMS (`pulse-bench insights`).
# Generator and rate limit off. Output goes to the terminal and to .run/bench/insights.txt.
#
#   ROUNDS        mesh rounds, each one run off and one on (default 4)
#   MESH_SECONDS  seconds of publishing per mesh run (default 40)
#   RATE          posts/s the rollups stand for (default 770, the mesh's measured rate)
#   EXTRA_TERMS   long-tail terms added to the generator's vocabulary, space-separated (default "0 500")
#   REQUESTS      requests per query (default 300), four at a time
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/.run/bench"
mkdir -p "$out"
results="$out/insights.txt"
rounds=${ROUNDS:-4}
mesh_seconds=${MESH_SECONDS:-40}
rate=${RATE:-770}
extra_terms=${EXTRA_TERMS:-"0 500"}
requests=${REQUESTS:-300}

log() { printf '\033[1m[bench-insights]\033[0m %s\n' "$*" >&2; }

export STREAM_PREFIX=pulse-bench-insights
export POSTS_PER_MINUTE=0
export RATE_LIMIT_REQUESTS=0
# Reads without a key (wrk, curl and the WebSocket clients send none); writes go through gRPC.
export PUBLIC_READS=true
export RUST_LOG=warn
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/.deps/onnxruntime/libonnxruntime.so.1.31.1}
database=pulse_bench_insights
export DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/$database

log "building (release)"
cargo build --release --locked --bins
bench="$root/target/release/pulse-bench"
trap 'scripts/down.sh >/dev/null 2>&1 || true' EXIT

# A fresh database and stream, then the platform; extra environment for the services as args.
fresh_platform() {
  scripts/down.sh >/dev/null 2>&1 || true
  dropdb -h 127.0.0.1 -U postgres --if-exists "$database"
  redis-cli --scan --pattern "$STREAM_PREFIX:*" | xargs -r redis-cli del >/dev/null
  env "$@" scripts/up.sh >"$out/up.log" 2>&1 || { tail -n 30 "$out/up.log"; exit 1; }
}
postgres_cpu() { ps -C postgres -o cputimes= | awk '{s += $1} END {print s}'; }

: >"$results"
for round in $(seq 1 "$rounds"); do
  for terms in false true; do
    log "mesh round $round, INSIGHTS_TERMS=$terms"
    fresh_platform INSIGHTS_TERMS="$terms"
    before=$(postgres_cpu)
    summary=$("$bench" mesh --seconds "$mesh_seconds" | grep -E '^(sustained|lost)')
    after=$(postgres_cpu)
    {
      echo "### mesh round $round INSIGHTS_TERMS=$terms: PostgreSQL CPU $((after - before)) s"
      echo "$summary"
    } | tee -a "$results"
  done
done

for extra in $extra_terms; do
  log "queries with $extra long-tail terms"
  fresh_platform
  {
    echo "### insights queries, $rate posts/s, $extra long-tail terms"
    "$bench" insights --database-url "$DATABASE_URL" --posts-per-second "$rate" \
      --extra-terms "$extra" --requests "$requests" --concurrency 4
    psql -h 127.0.0.1 -U postgres -d "$database" -Atc \
      "SELECT 'term_minutes rows ' || count(*) || ', ' || pg_size_pretty(pg_total_relation_size('term_minutes')) FROM term_minutes"
  } | tee -a "$results"
done
log "results in $results"
