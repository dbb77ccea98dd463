"""Train the intent model (``guards.intent``): shop question, service request (by reason) or off-topic.

    HF_HUB_OFFLINE=1 python -m modelprep.intent --out .cache/guards/intent.npz

Training rows: the ``"split": "train"`` rows of ``guards/data/customer_traffic.jsonl`` (service requests by
reason, off-topic and other-domain messages, shop questions in a customer's words) plus the shop questions of
``guards/data/benign_shop.jsonl`` and the benign rows of the other guard files (``label`` 0), except the kinds that
may be either a question or a request (``order_status``, ``payment``, ``mixed``). The ``"dev"`` rows and the
in-catalogue questions of ``evals/data/questions_dev.jsonl`` choose the thresholds: the lowest that routes at most
``MAX_ROUTED_QUESTIONS`` of the dev shop questions. The held-out rows of the other guard files are only reported
(``held_out_questions_routed``): written as shop questions for the injection guard, some of them are requests ("my
parcel went to the wrong address, what now?"). ``evals/data`` test files are never read here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.outcomes import SERVICE_REASONS
from core.settings import ROOT
from guards.classifier import embedding_model_id
from guards.input import sanitize
from guards.intent import CLASSES, IntentClassifier
from guards.train_classifier import DATA_DIR, DEFAULT_MODEL, embed_cached

logger = logging.getLogger(__name__)

TRAFFIC = DATA_DIR / "customer_traffic.jsonl"
DEV_QUESTIONS = ROOT / "evals" / "data" / "questions_dev.jsonl"
DEFAULT_OUT = ROOT / ".cache" / "guards" / "intent.npz"
AMBIGUOUS_KINDS = frozenset({"order_status", "payment", "mixed"})  # benign_shop/train_extra: question or request
MAX_ROUTED_QUESTIONS = 0.015  # of the dev shop questions, per route (1 of the 79 dev questions each)
L2 = 1e-2
STEPS = 600
LEARNING_RATE = 0.05
SEED = 7


def _label(row: dict[str, Any]) -> str:
    if row.get("intent") == "question":
        return "question"
    if row.get("intent") == "off_topic":
        return "off_topic"
    return str(row["reason"])


def load_rows(traffic: Path = TRAFFIC, data_dir: Path = DATA_DIR) -> list[tuple[str, str, str]]:
    """(text, class, split) rows: the customer traffic as labelled, the other guard files' shop questions."""
    rows: list[tuple[str, str, str]] = []
    for line in traffic.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            rows.append((sanitize(r["text"]), _label(r), "dev" if r["split"] == "dev" else "train"))
    for path in sorted(data_dir.glob("*.jsonl")):
        if path == traffic or path.name.startswith("leak"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line) if line.strip() else None
            if r and r.get("label") == 0 and r.get("kind") not in AMBIGUOUS_KINDS:
                rows.append((sanitize(r["text"]), "question", "held_out" if r.get("split") == "eval" else "train"))
    if DEV_QUESTIONS.is_file():
        for line in DEV_QUESTIONS.read_text(encoding="utf-8").splitlines():
            r = json.loads(line) if line.strip() else None
            if r and r.get("category") != "out_of_catalogue":
                rows.append((sanitize(r["question"]), "question", "dev"))
    return rows


def fit_softmax(x: np.ndarray, y: np.ndarray, classes: int, *, l2: float = L2) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced softmax regression by full-batch Adam on standardised ``x``; returns (weights, bias)."""
    n, d = x.shape
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    sample_w = (n / (classes * np.maximum(counts, 1)))[y]
    onehot = np.eye(classes)[y]
    w, b = np.zeros((d, classes)), np.zeros(classes)
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    for step in range(1, STEPS + 1):
        logits = x @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        err = (p - onehot) * sample_w[:, None] / n
        grads = [x.T @ err + l2 * w, err.sum(axis=0)]
        for i, (param, g) in enumerate(zip((w, b), grads, strict=True)):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            param -= LEARNING_RATE * (m[i] / (1 - 0.9**step)) / (np.sqrt(v[i] / (1 - 0.999**step)) + 1e-8)
    return w.astype(np.float32), b.astype(np.float32)


def pick_threshold(group_scores: np.ndarray, is_question: np.ndarray, max_routed: float) -> float:
    """The lowest threshold that routes at most ``max_routed`` of the dev shop questions."""
    for t in np.round(np.arange(0.3, 0.99, 0.01), 2):
        if float((group_scores[is_question] >= t).mean()) <= max_routed:
            return float(t)
    return 0.99


def train(embedder: Any, rows: Sequence[tuple[str, str, str]], cache_dir: Path) -> tuple[IntentClassifier, dict]:
    """Fit on the train rows, choose both thresholds on the dev rows, and report the dev figures."""
    x = embed_cached(embedder, [t for t, _, _ in rows], cache_dir)
    y = np.array([CLASSES.index(c) for _, c, _ in rows])
    dev = np.array([s == "dev" for _, _, s in rows])
    train_rows = np.array([s == "train" for _, _, s in rows])
    mean, scale = x[train_rows].mean(0), x[train_rows].std(0) + 1e-6
    w, b = fit_softmax((x[train_rows] - mean) / scale, y[train_rows], len(CLASSES))
    clf = IntentClassifier(w, b, mean, scale, meta={"embedding_model_id": embedding_model_id(embedder.name)})
    probs = clf.probabilities(x[dev])
    service_cols = [CLASSES.index(c) for c in SERVICE_REASONS]
    service, off = probs[:, service_cols].sum(1), probs[:, CLASSES.index("off_topic")]
    is_q = y[dev] == 0
    clf.service_threshold = pick_threshold(service, is_q, MAX_ROUTED_QUESTIONS)
    clf.off_topic_threshold = pick_threshold(off, is_q, MAX_ROUTED_QUESTIONS)
    verdicts = [clf.decide(p) for p in probs]
    got = np.array([v.intent for v in verdicts])
    want = np.array(["question" if c == 0 else "off_topic" if CLASSES[c] == "off_topic" else "service" for c in y[dev]])
    report = {
        "train_rows": int(train_rows.sum()),
        "dev_rows": int(dev.sum()),
        "thresholds": {"service": clf.service_threshold, "off_topic": clf.off_topic_threshold},
        "dev": {g: {"n": int((want == g).sum()), "recall": float((got[want == g] == g).mean())} for g in set(want)},
        "dev_questions_routed": float((got[is_q] != "question").mean()),
        "held_out_questions_routed": float(
            np.mean([clf.decide(p).intent != "question" for p in clf.probabilities(x[~dev & ~train_rows])])
        ),
        "dev_reason_accuracy": float(
            np.mean([v.reason == CLASSES[c] for v, c in zip(verdicts, y[dev], strict=True) if v.intent == "service"])
        ),
    }
    clf.meta |= {"report": report}
    return clf, report


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model path (.npz; .json written beside it)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="sentence-transformers e5 model path")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from core.embeddings import make_embedder

    t0 = time.perf_counter()
    embedder = make_embedder("sentence-transformers", args.model)
    clf, report = train(embedder, load_rows(), args.out.parent)
    clf.save(args.out)
    print(json.dumps(report, indent=2))
    print(f"model: {args.out} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
