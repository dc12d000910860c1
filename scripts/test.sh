#!/usr/bin/env bash
# Every test of the project: contracts (buf), Rust (fmt, clippy, unit and integration tests
# against the real PostgreSQL, Redis and ONNX Runtime), the alerting rules (promtool), the
# Kubernetes manifests and their rehearsal, and the dashboard's tests, after installing
# whatever is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
root=$(pwd)
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$root/.deps/onnxruntime/libonnxruntime.so.1.31.1}
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
export RUST_BACKTRACE=1
# kubectl from install.sh when the machine has none.
[ -x "$root/.deps/kubectl/bin/kubectl" ] && export PATH="$PATH:$root/.deps/kubectl/bin"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "buf lint and format"
tools/node_modules/.bin/buf lint
tools/node_modules/.bin/buf format -d --exit-code

step "cargo fmt"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "dashboard: typecheck, unit tests, build"
(cd dashboard && npm run --silent typecheck && npm test --silent && npm run --silent build)

step "Prometheus alerting rules: promtool check and unit tests"
promtool check rules deploy/prometheus/rules.yaml
promtool test rules deploy/prometheus/rules_test.yaml

step "Kubernetes manifests: kustomize + kubernetes-validate"
scripts/check-manifests.sh

step "cargo build (the binaries that end-to-end tests run as processes)"
# cargo test builds a package's binaries only for that package's own integration tests; the
# cluster rehearsal and the exit tests run every service's binary, and refuse stale ones.
cargo build --workspace --bins --locked

step "cargo test (with the cluster rehearsal of both overlays)"
log=$(mktemp)
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo's own last line is only the last binary's).
# Ignored tests did not run: they are counted as skipped, never as passed.
read -r passed failed skipped < <(awk '/^test result:/ {
  for (i = 2; i <= NF; i++) {
    if ($i == "passed;") p += $(i-1); if ($i == "failed;") f += $(i-1); if ($i == "ignored;") s += $(i-1)
  }
} END { print p + 0, f + 0, s + 0 }' "$log")
rm -f "$log"
if [ "$status" -eq 0 ]; then
  step "dashboard in Chromium against the real services"
  # The screenshot goes under .run/: docs/dashboard.png is refreshed on purpose, by running
  # scripts/browser-test.sh on a platform with data worth showing.
  if SCREENSHOT="$root/.run/browser-test/dashboard.png" PULSE_ISOLATED=1 PULSE_BIN_DIR="$root/target/debug" \
    scripts/browser-test.sh; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    status=1
  fi
fi
echo
echo "total: $passed passed, $failed failed, $skipped skipped"
exit "$status"
