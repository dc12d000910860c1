#!/usr/bin/env bash
# Renders every Kubernetes overlay with kustomize and validates the output against the
# Kubernetes 1.31 API schemas, rejecting unknown fields (kubernetes-validate --strict).
#
#   scripts/check-manifests.sh            # every overlay under deploy/k8s/overlays/
#   scripts/check-manifests.sh dev        # only the named ones
#
# Needs kubectl (with its built-in kustomize) and python3; installs kubernetes-validate into
# .deps/k8s-venv the first time. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=1.31
VALIDATE_VERSION=1.37.0
VENV=.deps/k8s-venv

log() { printf '\033[1m[check-manifests]\033[0m %s\n' "$*"; }

if ! command -v kubectl >/dev/null 2>&1; then
  echo "check-manifests: kubectl not found. It renders the overlays (kubectl kustomize); install" >&2
  echo "kubectl 1.27 or newer and run this again (this script does not install it)." >&2
  exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "check-manifests: python3 not found (needed for kubernetes-validate)" >&2
  exit 1
fi

if [ "$("$VENV/bin/kubernetes-validate" --version 2>/dev/null || true)" != "$VALIDATE_VERSION" ]; then
  log "installing kubernetes-validate $VALIDATE_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$VALIDATE_VERSION"
fi

if [ $# -gt 0 ]; then
  overlays=("$@")
else
  overlays=()
  for dir in deploy/k8s/overlays/*/; do overlays+=("$(basename "$dir")"); done
fi

failed=()
for overlay in "${overlays[@]}"; do
  dir="deploy/k8s/overlays/$overlay"
  rendered=$(mktemp)
  if ! kubectl kustomize "$dir" > "$rendered"; then
    log "FAIL $overlay: kubectl kustomize $dir failed"
    failed+=("$overlay")
  elif ! out=$("$VENV/bin/kubernetes-validate" --strict -k "$KUBERNETES_VERSION" --quiet - < "$rendered" 2>&1) \
      || grep -qE '^(ERROR|WARN|FATAL)' <<<"$out"; then
    # WARN counts too: it means a resource had no schema, so it was not validated at all.
    printf '%s\n' "$out" >&2
    log "FAIL $overlay"
    failed+=("$overlay")
  else
    count=$(grep -c '^kind:' "$rendered" || true)
    log "ok   $overlay: $count resources valid against Kubernetes $KUBERNETES_VERSION (strict)"
  fi
  rm -f "$rendered"
done

if [ ${#failed[@]} -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
