#!/usr/bin/env bash
# The dashboard's browser test against the real platform: builds the dashboard, starts the
# services that are not already running (release binaries, as scripts/up.sh does), runs
# dashboard/e2e/browser.test.mjs in Debian's Chromium (the test starts, kills and restarts the
# gateway itself), then stops what it started. Exits non-zero when the test fails.
#
# The gateway needs API keys: the run creates a read key for the dashboard (the test opens it
# with #key=...) and a write key for the posts the test publishes itself, in the services'
# database, and revokes both afterwards.
#
#   PULSE_BUILD=1       build the release binaries even when they exist (cargo build --release --bins)
#   PULSE_BIN_DIR       where the binaries are (default target/release; the test command uses the
#                       debug build that cargo test has just made)
#   PULSE_GATEWAY_URL   where the test's gateway listens (default: a free port on 127.0.0.1)
#   PULSE_ISOLATED=1    start every service afresh on free ports, with a database and a stream
#                       prefix of this run's own, removed afterwards (the test command sets it:
#                       the fixed ports 50051-50053 lie in Linux's ephemeral range, so an
#                       outgoing connection of another process can hold one)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
run="$root/.run/browser-test"
mkdir -p "$run"
bin=${PULSE_BIN_DIR:-$root/target/release}

export DATABASE_URL=${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/pulse}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/.deps/onnxruntime/libonnxruntime.so.1.31.1}
export RUST_LOG=${RUST_LOG:-warn}

log() { printf '\033[1m[browser-test]\033[0m %s\n' "$*"; }

# --- the browser ------------------------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "/usr/bin/chromium is missing: install the Debian package chromium (as root)" >&2
    exit 1
  fi
  log "installing Debian's chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
fi

# --- PostgreSQL, Redis, ONNX Runtime, node modules; then binaries and the dashboard -----------
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null ||
  [ ! -f "$ORT_DYLIB_PATH" ] || [ ! -d dashboard/node_modules ]; then
  ./scripts/install.sh
fi
[ -d dashboard/node_modules/playwright-core ] || (cd dashboard && npm ci --silent)

missing=0
for name in pulse-store pulse-inference pulse-analytics pulse-worker pulse-ingester pulse-gateway; do
  [ -x "$bin/$name" ] || missing=1
done
if [ "$bin" = "$root/target/debug" ]; then
  [ "$missing" = 0 ] || cargo build --locked --bins
elif [ "$missing" = 1 ] || [ "${PULSE_BUILD:-0}" = 1 ]; then
  log "building the release binaries"
  cargo build --release --locked --bins
fi
log "building the dashboard"
(cd dashboard && npm run --silent build >/dev/null)

# --- the services this run starts (and stops) -------------------------------------------------
started=()
cleanups=()
cleanup() {
  local status=$?
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    local name=${started[$i]} pid
    pid=$(cat "$run/$name.pid" 2>/dev/null) || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$run/$name.pid"
  done
  [ ${#started[@]} -gt 0 ] && log "stopped ${started[*]}"
  for cleanup_step in "${cleanups[@]}"; do "$cleanup_step"; done
  exit $status
}
trap cleanup EXIT INT TERM

# shellcheck source=lib/services.sh
. "$root/scripts/lib/services.sh"

start() {
  ADMIN_ADDR=127.0.0.1:0 start_service "$@"
  started+=("$1")
}

if [ "${PULSE_ISOLATED:-0}" = 1 ]; then
  free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  isolated_db="pulse_browser_test_$$"
  export DATABASE_URL="${DATABASE_URL%/*}/$isolated_db"
  export STREAM_PREFIX="browser-test-$$"
  export INFERENCE_ADDR="127.0.0.1:$(free_port)" ANALYTICS_ADDR="127.0.0.1:$(free_port)" INGESTER_ADDR="127.0.0.1:$(free_port)"
  export INFERENCE_URL="http://$INFERENCE_ADDR" ANALYTICS_URL="http://$ANALYTICS_ADDR" INGESTER_URL="http://$INGESTER_ADDR"
  remove_isolated() {
    redis-cli -u "$REDIS_URL" --scan --pattern "$STREAM_PREFIX:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
    psql "${DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $isolated_db WITH (FORCE)" >/dev/null 2>&1 || true
  }
  cleanups+=(remove_isolated)
fi
inference_port=${INFERENCE_ADDR:-:50051}; inference_port=${inference_port##*:}
analytics_port=${ANALYTICS_ADDR:-:50052}; analytics_port=${analytics_port##*:}
ingester_port=${INGESTER_ADDR:-:50053}; ingester_port=${ingester_port##*:}

# A service counts as running when its port answers; the worker when a worker process runs
# (in isolated mode, never: the run has its own of each).
"$bin/pulse-store" migrate >"$run/migrate.log" 2>&1 || { cat "$run/migrate.log"; exit 1; }

# The keys of this run: stdout is the key alone. Revoked at the end (an isolated run's database
# goes anyway), so a shared database does not collect live keys from test runs.
key_ids=()
create_key() { # SCOPE VARIABLE: a key with SCOPE, into VARIABLE
  local key
  key=$("$bin/pulse-store" keys create --name "browser test $$ ($1)" --scope "$1" 2>"$run/keys.log") ||
    { cat "$run/keys.log" >&2; return 1; }
  [[ $key =~ ^pk_([0-9a-f]{12})_[0-9a-f]{64}$ ]] || { echo "pulse-store printed no key for $1" >&2; return 1; }
  key_ids+=("${BASH_REMATCH[1]}")
  printf -v "$2" '%s' "$key"
}
revoke_keys() {
  for id in "${key_ids[@]}"; do "$bin/pulse-store" keys revoke "$id" >/dev/null 2>&1 || true; done
}
cleanups=(revoke_keys "${cleanups[@]}")
create_key read read_key
create_key write write_key
log "created a read key (${key_ids[0]}) for the dashboard and a write key (${key_ids[1]}) to publish"
if ! port_open "$inference_port"; then
  log "starting inference"
  start pulse-inference --sentiment-model-dir "$root/models/pulse-minilm" --emotion-model-dir "$root/models/pulse-minilm"
  wait_port "$inference_port" pulse-inference
fi
if ! port_open "$analytics_port"; then
  log "starting analytics"
  start pulse-analytics
  wait_port "$analytics_port" pulse-analytics
fi
if [ "${PULSE_ISOLATED:-0}" = 1 ] || ! pgrep -x pulse-worker >/dev/null; then
  log "starting a worker"
  start pulse-worker
fi
if ! port_open "$ingester_port"; then
  log "starting the ingester (60 posts/min)"
  POSTS_PER_MINUTE=${POSTS_PER_MINUTE:-60} start pulse-ingester
  wait_port "$ingester_port" pulse-ingester
fi

log "running dashboard/e2e/browser.test.mjs"
(cd dashboard && PULSE_READ_KEY="$read_key" PULSE_WRITE_KEY="$write_key" PULSE_GATEWAY_BIN="$bin/pulse-gateway" \
  DASHBOARD_DIR="$root/dashboard/dist" npm run --silent test:browser)
