#!/usr/bin/env bash
# Builds Pulse, migrates the database, and starts the five services and the dashboard in the
# background (logs and pids in .run/), after installing whatever is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
root=$(pwd)
run="$root/.run"
mkdir -p "$run"

export DATABASE_URL=${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/pulse}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/.deps/onnxruntime/libonnxruntime.so.1.31.1}
export DASHBOARD_DIR=${DASHBOARD_DIR:-$root/dashboard/dist}
export RUST_LOG=${RUST_LOG:-info}
gateway_port=${GATEWAY_PORT:-8080}
export GATEWAY_ADDR=${GATEWAY_ADDR:-0.0.0.0:$gateway_port}

log() { printf '\033[1m[up]\033[0m %s\n' "$*"; }

"$root/scripts/down.sh" >/dev/null 2>&1 || true

log "building (release)"
cargo build --release --locked --bins
log "building the dashboard"
(cd dashboard && npm run build --silent)

bin="$root/target/release"
log "migrating $DATABASE_URL"
"$bin/pulse-store" migrate > "$run/migrate.log" 2>&1 || { cat "$run/migrate.log"; exit 1; }

# API keys of this machine: a read key for the dashboard and an admin key for curl, made once per
# database and kept in .run/api-keys.env (readable by this user only); made again when revoked.
keys_file="$run/api-keys.env"
key_active() {
  "$bin/pulse-store" keys list 2>/dev/null |
    awk -F'\t' -v id="$(echo "$1" | cut -d_ -f2)" '$1 == id && $6 == "active" {found = 1} END {exit !found}'
}
PULSE_READ_KEY='' PULSE_ADMIN_KEY=''
# shellcheck disable=SC1090
[ -f "$keys_file" ] && . "$keys_file"
if [ -z "$PULSE_READ_KEY" ] || ! key_active "$PULSE_READ_KEY" ||
  [ -z "$PULSE_ADMIN_KEY" ] || ! key_active "$PULSE_ADMIN_KEY"; then
  log "creating API keys (.run/api-keys.env)"
  PULSE_READ_KEY=$("$bin/pulse-store" keys create --name "dashboard (scripts/up.sh)" --scope read 2>/dev/null)
  PULSE_ADMIN_KEY=$("$bin/pulse-store" keys create --name "admin (scripts/up.sh)" --scope admin 2>/dev/null)
  (umask 077 && printf 'PULSE_READ_KEY=%s\nPULSE_ADMIN_KEY=%s\n' "$PULSE_READ_KEY" "$PULSE_ADMIN_KEY" >"$keys_file")
fi

# shellcheck source=lib/services.sh
. "$root/scripts/lib/services.sh"

log "starting inference";  start_service pulse-inference --sentiment-model-dir "$root/models/pulse-minilm" --emotion-model-dir "$root/models/pulse-minilm"
wait_port 50051 pulse-inference
log "starting analytics";  start_service pulse-analytics;  wait_port 50052 pulse-analytics
log "starting worker";     start_service pulse-worker
log "starting ingester";   start_service pulse-ingester;   wait_port 50053 pulse-ingester
log "starting gateway";    start_service pulse-gateway;    wait_port "$gateway_port" pulse-gateway

log "Pulse is up. Dashboard: http://127.0.0.1:$gateway_port/#key=$PULSE_READ_KEY"
log "API: curl -H \"Authorization: Bearer \$PULSE_ADMIN_KEY\" http://127.0.0.1:$gateway_port/api/posts   (keys in .run/api-keys.env)"
log "logs in .run/, stop with: scripts/down.sh"
