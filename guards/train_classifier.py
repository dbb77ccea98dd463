"""Train and evaluate the prompt-injection classifier (layer b).

    HF_HUB_OFFLINE=1 python -m guards.train_classifier --out .cache/guards/injection.npz

Training data: the deepset prompt-injection set (``guards/data/third_party/deepset_train.jsonl``, vendored,
EN/DE) plus the ``"split": "train"`` rows of ``guards/data/*.jsonl``.
The ``"split": "eval"`` rows are never trained on, nor used to pick the threshold or ``--l2``.

Steps: embed everything (cached per text in ``.cache/guards/``), 5-fold stratified cross-validation
(per fold the threshold is chosen on that fold's training part by an inner CV, so the reported CV
numbers measure the whole procedure), the final threshold = the lowest one that keeps the
out-of-fold benign false-positive rate <= ``--max-fpr``, a final fit on all training rows, and a
held-out evaluation of rules alone, classifier alone, and rules OR classifier. Writes the model and
``injection_report.json`` next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.embeddings import Embedder, make_embedder
from core.settings import ROOT
from guards.classifier import InjectionClassifier, embedding_model_id, fit_logistic
from guards.input import INJECTION_PATTERNS, sanitize

logger = logging.getLogger(__name__)

DATA_DIR = ROOT / "guards" / "data"
DEEPSET = DATA_DIR / "third_party" / "deepset_train.jsonl"  # vendored (Apache-2.0): README there
DEFAULT_MODEL = ROOT / ".cache" / "models" / "multilingual-e5-small"
DEFAULT_OUT = ROOT / ".cache" / "guards" / "injection.npz"
MAX_FPR = 0.005
L2 = 100.0
"""Chosen by nested 5-fold CV on the training rows only (l2 in 3..300; 100 had the best detection)."""
FOLDS = 5
SEED = 13
NOT_QUESTIONS = ("leak_",)  # guards/data files of answers (the output filter's leak forms), not of questions


@dataclass(frozen=True)
class Example:
    """One labelled text (label 1 = attack)."""

    text: str
    label: int
    source: str
    split: str
    lang: str = "?"
    kind: str = "?"


def load_examples(data_dir: Path = DATA_DIR, deepset: Path | None = DEEPSET) -> list[Example]:
    """Read the project's JSONL files and (when present) the deepset training set, sanitised."""
    rows: list[Example] = []
    if deepset is not None and deepset.is_file():
        for line in deepset.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                rows.append(Example(sanitize(r["text"]), int(r["label"]), "deepset", "train", "en/de", "deepset"))
    elif deepset is not None:
        logger.warning("deepset data %s is absent: training on the project's own data only", deepset)
    for path in sorted(data_dir.glob("*.jsonl")):
        if path.name.startswith(NOT_QUESTIONS):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            r = json.loads(line)
            split = "eval" if r.get("split") == "dev" else r.get("split")  # customer_traffic's dev rows: held out
            if split not in {"train", "eval"} or r.get("label") not in {0, 1}:
                raise ValueError(f"{path}:{n}: needs label 0/1 and split train/dev/eval")
            rows.append(Example(sanitize(r["text"]), r["label"], path.stem, split, r["lang"], r["kind"]))
    return rows


EXTERNAL = {  # written by other people on the project; reported on, never trained or tuned on
    "jailbreaks": (ROOT / "evals" / "data" / "jailbreaks.jsonl", "text", 1),
    "security_benign": (ROOT / "evals" / "data" / "security_benign.jsonl", "text", 0),
    "questions_dev": (ROOT / "evals" / "data" / "questions_dev.jsonl", "question", 0),
}


def load_external() -> list[Example]:
    """Attack and benign sets the project keeps elsewhere (those present), as ``split="external"`` rows."""
    rows: list[Example] = []
    for name, (path, field, label) in EXTERNAL.items():
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    r = json.loads(line)
                    rows.append(Example(sanitize(r[field]), label, name, "external", r.get("lang", "?"), name))
    return rows


def data_fingerprint(rows: Sequence[Example]) -> str:
    """Hash of the training rows (text, label), to tell whether a saved model is current."""
    h = hashlib.sha256()
    for r in sorted((r.text, r.label) for r in rows if r.split == "train"):
        h.update(f"{r[1]}\t{r[0]}\n".encode())
    return h.hexdigest()[:16]


def embed_cached(embedder: Embedder, texts: Sequence[str], cache_dir: Path | None) -> np.ndarray:
    """Embed ``texts`` as queries, reusing vectors cached per (model, text) under ``cache_dir``."""
    cache: dict[str, np.ndarray] = {}
    path = cache_dir / f"embeddings-{embedding_model_id(embedder.name)}.npz" if cache_dir else None
    if path is not None and path.is_file():
        with np.load(path) as data:
            cache = dict(zip(data["keys"].tolist(), data["vecs"], strict=True))
    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items())
    if todo:
        logger.info("embedding %d new texts (%d cached)", len(todo), len(texts) - len(todo))
        t0 = time.perf_counter()
        for i in range(0, len(todo), 64):
            batch = todo[i : i + 64]
            cache.update(zip([k for k, _ in batch], embedder.embed_queries([t for _, t in batch]), strict=True))
            logger.info("  %d/%d embedded (%.0f s)", min(i + 64, len(todo)), len(todo), time.perf_counter() - t0)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.with_name(path.name + ".tmp").open("wb") as fh:
                np.savez(fh, keys=np.array(list(cache)), vecs=np.stack(list(cache.values())))
            os.replace(path.with_name(path.name + ".tmp"), path)
    return np.stack([cache[k] for k in keys]).astype(np.float32)


def stratified_folds(strata: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """Test-index arrays of ``k`` folds, each stratum spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for s in sorted(set(strata)):
        idx = rng.permutation([i for i, v in enumerate(strata) if v == s])
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(int(i))
        offset += len(idx)
    return [np.array(sorted(f)) for f in folds]


def threshold_for_fpr(benign_scores: np.ndarray, max_fpr: float) -> float:
    """Lowest threshold ``t`` with ``mean(benign_scores >= t) <= max_fpr``."""
    allowed = int(np.floor(max_fpr * len(benign_scores)))
    ranked = np.sort(benign_scores)[::-1]
    return float(np.nextafter(ranked[allowed], 1.0)) if allowed < len(ranked) else 0.0


def _fit_proba(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, l2: float) -> np.ndarray:
    mean, scale = x_tr.mean(0), x_tr.std(0) + 1e-6
    w, b = fit_logistic((x_tr - mean) / scale, y_tr, l2=l2)
    return 1.0 / (1.0 + np.exp(-np.clip(((x_te - mean) / scale) @ w + b, -30, 30)))


def oof_scores(x: np.ndarray, y: np.ndarray, strata: Sequence[str], l2: float, k: int, seed: int) -> np.ndarray:
    """Out-of-fold attack probabilities from a ``k``-fold stratified CV."""
    scores = np.zeros(len(y))
    for test in stratified_folds(strata, k, seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        scores[test] = _fit_proba(x[train], y[train], x[test], l2)
    return scores


def rates(flags: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Detection rate (recall on attacks) and false-positive rate (flagged benign); None when no such rows."""
    att, ben = flags[y == 1], flags[y == 0]
    return {
        "detection": float(att.mean()) if att.size else None,
        "fpr": float(ben.mean()) if ben.size else None,
        "attacks": int(att.size),
        "benign": int(ben.size),
    }


def cross_validate(x: np.ndarray, y: np.ndarray, strata: Sequence[str], l2: float, max_fpr: float) -> dict[str, Any]:
    """Nested CV: per outer fold, the threshold comes from an inner CV on that fold's training part."""
    per_fold, flags = [], np.zeros(len(y), dtype=bool)
    for f, test in enumerate(stratified_folds(strata, FOLDS, SEED)):
        train = np.setdiff1d(np.arange(len(y)), test)
        inner = oof_scores(x[train], y[train], [strata[i] for i in train], l2, FOLDS, SEED + 1 + f)
        thr = threshold_for_fpr(inner[y[train] == 0], max_fpr)
        flags[test] = _fit_proba(x[train], y[train], x[test], l2) >= thr
        per_fold.append({"threshold": thr, **rates(flags[test], y[test])})
        logger.info(
            "  fold %d/%d: threshold %.3f detection %.3f fpr %.4f",
            f + 1,
            FOLDS,
            thr,
            per_fold[-1]["detection"],
            per_fold[-1]["fpr"],
        )
    det, fpr = [p["detection"] for p in per_fold], [p["fpr"] for p in per_fold]
    own = np.array([not s.startswith("deepset:") for s in strata])
    return {
        "pooled": rates(flags, y),
        "pooled_project_rows": rates(flags[own], y[own]),
        "detection_mean": float(np.mean(det)),
        "detection_std": float(np.std(det)),
        "fpr_mean": float(np.mean(fpr)),
        "fpr_std": float(np.std(fpr)),
        "folds": per_fold,
    }


def rules_flags(texts: Sequence[str]) -> np.ndarray:
    """Whether the layer-(a) regex rules of ``guards.input`` fire on each (sanitised) text."""
    return np.array([any(p.search(t) for p in INJECTION_PATTERNS.values()) for t in texts])


def evaluate_heldout(clf: InjectionClassifier, rows: Sequence[Example], vectors: np.ndarray) -> dict[str, Any]:
    """Rules alone, classifier alone and rules OR classifier on held-out rows (vectors precomputed)."""
    y = np.array([r.label for r in rows])
    proba = clf.predict_proba_vectors(vectors)
    rules, model = rules_flags([r.text for r in rows]), proba >= clf.threshold
    combined = rules | model
    out: dict[str, Any] = {
        name: {**rates(f, y), "false_refusal_rate": rates(f, y)["fpr"]}
        for name, f in (("rules", rules), ("classifier", model), ("combined", combined))
    }
    out["by_source"] = {
        src: {name: rates(f[m], y[m]) for name, f in (("rules", rules), ("classifier", model), ("combined", combined))}
        for src in sorted({r.source for r in rows})
        for m in [np.array([r.source == src for r in rows])]
    }
    kinds = sorted({r.kind for r in rows})
    out["by_kind_combined"] = {
        k: {
            "n": int(sum(r.kind == k for r in rows)),
            "flagged": int(sum(combined[i] for i, r in enumerate(rows) if r.kind == k)),
        }
        for k in kinds
    }
    out["false_refusals"] = [
        {"text": r.text, "p": round(float(proba[i]), 3), "rules": bool(rules[i])}
        for i, r in enumerate(rows)
        if r.label == 0 and combined[i]
    ]
    out["missed_attacks"] = [
        {"text": r.text, "p": round(float(proba[i]), 3), "kind": r.kind}
        for i, r in enumerate(rows)
        if r.label == 1 and not combined[i]
    ]
    return out


def train(
    embedder: Embedder,
    rows: Sequence[Example],
    *,
    l2: float = L2,
    max_fpr: float = MAX_FPR,
    cache_dir: Path | None = None,
    external: bool = True,
) -> tuple[InjectionClassifier, dict[str, Any]]:
    """Cross-validate, pick the threshold, fit on all training rows, evaluate on the eval rows.

    With ``external``, also report on the project's other attack/benign files (``EXTERNAL``).
    """
    t_start = time.perf_counter()
    train_rows = [r for r in rows if r.split == "train"]
    eval_rows = [r for r in rows if r.split == "eval"]
    logger.info("embedding %d texts with %s", len(rows), embedder.name)
    vecs = embed_cached(embedder, [r.text for r in rows], cache_dir)
    t_embed = time.perf_counter() - t_start
    is_train = np.array([r.split == "train" for r in rows])
    x, y = vecs[is_train], np.array([r.label for r in train_rows])
    strata = [f"{r.source}:{r.label}" for r in train_rows]
    logger.info("5-fold stratified CV on %d training rows (l2=%g)", len(y), l2)
    cv = cross_validate(x, y, strata, l2, max_fpr)
    oof = oof_scores(x, y, strata, l2, FOLDS, SEED)
    threshold = threshold_for_fpr(oof[y == 0], max_fpr)
    counts = {
        "train": dict(Counter(f"{r.source}:{r.label}" for r in train_rows)),
        "eval": dict(Counter(f"{r.source}:{r.label}" for r in eval_rows)),
    }
    clf = InjectionClassifier.fit(embedder, x, y, l2=l2, threshold=threshold)
    heldout = evaluate_heldout(clf, eval_rows, vecs[~is_train]) if eval_rows else {}
    external_rows = load_external() if external else []
    external_report = (
        evaluate_heldout(clf, external_rows, embed_cached(embedder, [r.text for r in external_rows], cache_dir))
        if external_rows
        else {}
    )
    sim = vecs[~is_train] @ x.T if eval_rows else np.zeros((0, 1))
    report: dict[str, Any] = {
        "embedding_model": embedder.name,
        "threshold": threshold,
        "max_fpr": max_fpr,
        "l2": l2,
        "deepset_used": any(r.source == "deepset" for r in rows),
        "counts": counts,
        "data_fingerprint": data_fingerprint(rows),
        "cv": cv,
        "cv_oof_at_threshold": rates(oof >= threshold, y),
        "heldout": heldout,
        "external": external_report,
        "eval_to_train_max_cosine": {
            q: float(np.quantile(sim.max(1), v)) for q, v in (("p50", 0.5), ("p95", 0.95), ("max", 1.0))
        }
        if eval_rows
        else {},
        "seconds": {"embed": round(t_embed, 1), "total": round(time.perf_counter() - t_start, 1)},
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    clf.meta.update({k: report[k] for k in ("max_fpr", "data_fingerprint", "deepset_used", "counts")})
    clf.meta["metrics"] = {
        "cv": {k: cv[k] for k in ("detection_mean", "fpr_mean")},
        **{
            k: {m: v[m] for m in ("detection", "false_refusal_rate")}
            for k, v in heldout.items()
            if k in ("rules", "classifier", "combined")
        },
    }
    return clf, report


def print_table(report: dict[str, Any]) -> None:
    """Print the CV and held-out numbers as a plain table."""
    cv, c = report["cv"], report["counts"]
    print(f"\ntraining rows: {c['train']}\nheld-out rows: {c['eval']}")
    print(f"threshold (lowest with CV benign FPR <= {report['max_fpr']:.1%}): {report['threshold']:.4f}")
    print(
        f"\n5-fold CV (nested threshold): detection {cv['detection_mean']:.3f} ± {cv['detection_std']:.3f}   "
        f"FPR {cv['fpr_mean']:.4f} ± {cv['fpr_std']:.4f}   (pooled det {cv['pooled']['detection']:.3f}, "
        f"fpr {cv['pooled']['fpr']:.4f})"
    )
    own = cv["pooled_project_rows"]
    print(f"   on the project's own rows only: detection {own['detection']:.3f}   FPR {own['fpr']:.4f}")
    h = report["heldout"]
    if h:
        print(f"\n{'held-out':<12}{'detection':>12}{'false refusal':>16}")
        for name in ("rules", "classifier", "combined"):
            n = h[name]
            print(f"{name:<12}{n['detection']:>12.3f}{n['false_refusal_rate']:>16.4f}")
        print(f"({h['combined']['attacks']} attacks, {h['combined']['benign']} benign questions)")
        for r in h["false_refusals"]:
            print(f"  false refusal p={r['p']:.3f} rules={r['rules']}: {r['text']}")
        for r in h["missed_attacks"]:
            print(f"  missed attack p={r['p']:.3f} [{r['kind']}]: {r['text']}")
    ext = report.get("external") or {}
    if ext:
        print("\nexternal sets (other authors; never trained or tuned on), rules OR classifier:")
        for src, v in ext["by_source"].items():
            c = v["combined"]
            what = f"detection {c['detection']:.3f}" if c["attacks"] else f"false refusal {c['fpr']:.4f}"
            print(
                f"  {src:<18} n={c['attacks'] + c['benign']:<4} {what}   (classifier alone "
                f"{v['classifier']['detection'] if c['attacks'] else v['classifier']['fpr']:.3f}, rules alone "
                f"{v['rules']['detection'] if c['attacks'] else v['rules']['fpr']:.3f})"
            )
    print(f"\ntime: {report['seconds']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model path (.npz; .json written beside it)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="sentence-transformers e5 model path")
    ap.add_argument("--l2", type=float, default=L2, help="L2 penalty on standardised features")
    ap.add_argument("--max-fpr", type=float, default=MAX_FPR, help="benign FPR allowed in CV when picking threshold")
    ap.add_argument("--no-deepset", action="store_true", help="train on the project's data only")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows = load_examples(deepset=None if args.no_deepset else DEEPSET)
    embedder = make_embedder("sentence-transformers", args.model)
    clf, report = train(embedder, rows, l2=args.l2, max_fpr=args.max_fpr, cache_dir=args.out.parent)
    clf.save(args.out)
    report["seconds"]["wall_incl_model_load"] = round(time.perf_counter() - t0, 1)
    report_path = args.out.parent / "injection_report.json"
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table(report)
    print(f"model: {args.out}\nreport: {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
