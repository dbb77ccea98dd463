"""Leak forms against ``guards.leaks.LeakDetector``: ``python -m evals.leak_eval``.

The thresholds (alphanumeric window, word n-gram and its count, embedding score: the cosine to the system prompt
minus the mean cosine to the nearest anchors) are chosen on the dev set ``guards/data/leak_forms_dev.jsonl``: most
leaks detected with at most 0.5 % of the benign answers blocked, then fewest benign answers blocked, then the most
conservative setting; the score threshold goes midway between the highest benign score it must pass and the lowest
leak score it must catch. The grading set ``evals/data/leak_forms_test.jsonl`` was written separately (first) and
is only scored with that choice; note that the detector's design (contrastive score, anchors) was revised once after
a first look at its test figures, so the test set is slightly less clean than a never-seen one.

Prints per-form detection and the benign block rate (of the detector and of the whole ``OutputFilter`` without a
context) on both, and the time per check. On dev the detector's figures are cross-fold (each benign answer scored
without the anchors of its fold); the whole filter there uses all anchors, the answers themselves included. The
embedder is multilingual-e5-small (query encoder) from ``.cache/models/multilingual-e5-small`` (``make models``),
loaded offline.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chains import prompts
from guards import leaks
from guards.leaks import LeakDetector, default_anchors, sentences, views
from guards.output import OutputFilter

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "guards" / "data" / "leak_forms_dev.jsonl"
TEST = ROOT / "evals" / "data" / "leak_forms_test.jsonl"
E5_DIR = ROOT / ".cache" / "models" / "multilingual-e5-small"
CANARIES = {DEV: "KH-7c41d09e2b3a", TEST: "KH-e05f93a1c6d2"}  # the canary each set's leaks carry
MAX_BENIGN_BLOCKED = 0.005
WINDOWS = (24, 28, 32, 36, 40)
NGRAMS = (3, 4, 5, 6)
MATCHES = (1, 2, 3)
FOLDS = 5  # dev benign answers are scored with the anchors of the other folds (they are anchors themselves)


class Memo:
    """The embedder with a memory, so that anchors and sentences are embedded once for all settings."""

    def __init__(self, embed: leaks.Embed) -> None:
        self.embed = embed
        self.rows: dict[str, np.ndarray] = {}

    def prime(self, texts: list[str]) -> None:
        """Embed the sentences of ``texts`` in one batch."""
        todo = sorted({s for t in texts for s in sentences(t)} - self.rows.keys())
        if todo:
            self.rows.update(zip(todo, self.embed(todo), strict=True))

    def __call__(self, texts: list[str]) -> np.ndarray:
        """The rows of ``texts``, embedding only those not seen before."""
        todo = [t for t in dict.fromkeys(texts) if t not in self.rows]
        if todo:
            self.rows.update(zip(todo, self.embed(todo), strict=True))
        return np.stack([self.rows[t] for t in texts])


@dataclass(frozen=True)
class Choice:
    """One setting of the thresholds."""

    window: int
    ngram: int
    matches: int
    similarity: float


def read(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def protected(canary: str) -> list[str]:
    """The system prompts as the server builds them."""
    return [prompts.system_prompt("nl", canary), prompts.system_prompt("en", canary)]


def features(rows: list[dict[str, Any]], canary: str, embed: Memo, *, cross_fold: bool) -> dict[str, Any]:
    """Per row: canary found, window overlap per window size, n-gram matches per n, similarity score.

    ``cross_fold``: the rows' benign answers are anchors too, so each is scored with the anchors of the other folds.
    """
    anchors = list(default_anchors())
    everyone = list(range(len(rows)))
    groups: list[tuple[list[int], list[str]]] = [(everyone, anchors)]
    if cross_fold:
        benign = [i for i, r in enumerate(rows) if r["label"] == 0]
        for fold in range(FOLDS):
            held = {rows[i]["text"] for i in benign[fold::FOLDS]}
            groups.append((benign[fold::FOLDS], [a for a in anchors if a not in held]))
    all_views = [views(r["text"]) for r in rows]
    out: dict[str, Any] = {
        "canary": np.zeros(len(rows), dtype=bool),
        "similarity": np.zeros(len(rows)),
        "window": {w: np.zeros(len(rows), dtype=bool) for w in WINDOWS},
        "tokens": {n: np.zeros(len(rows), dtype=int) for n in NGRAMS},
    }
    for idx, ordinary in groups:  # later groups overwrite their rows' scores
        det = LeakDetector(canary, protected(canary), embed, anchors=ordinary)
        for i in idx:
            out["canary"][i] = det.has_canary(all_views[i])
            out["similarity"][i] = det.similarity(rows[i]["text"])
        for w in WINDOWS:
            det = LeakDetector(canary, protected(canary), alnum_window=w, anchors=ordinary)
            for i in idx:
                out["window"][w][i] = det.window_overlap(all_views[i])
        for n in NGRAMS:
            det = LeakDetector(canary, protected(canary), token_ngram=n, anchors=ordinary)
            for i in idx:
                out["tokens"][n][i] = det.token_overlap(all_views[i])
    return out


def flagged(f: dict[str, Any], c: Choice) -> np.ndarray:
    """Rows the detector flags under ``c``."""
    lexical = f["canary"] | f["window"][c.window] | (f["tokens"][c.ngram] >= c.matches)
    return np.asarray(lexical | (f["similarity"] >= c.similarity))


def choose(f: dict[str, Any], labels: np.ndarray) -> Choice:
    """The thresholds on the dev set (see the module docstring)."""
    leak, benign = labels == 1, labels == 0
    budget = int(MAX_BENIGN_BLOCKED * benign.sum())
    best: tuple[Any, ...] | None = None
    for w, n, m in itertools.product(WINDOWS, NGRAMS, MATCHES):
        lexical = f["canary"] | f["window"][w] | (f["tokens"][n] >= m)
        sims = f["similarity"]
        for t in [*sorted(set(sims[leak & ~lexical].tolist())), 9.0]:
            hits = int((lexical | (sims >= t))[leak].sum())
            blocked = int((lexical | (sims >= t))[benign].sum())
            if blocked > budget:
                continue
            below = sims[benign & ~lexical & (sims < t)]
            ceiling = float(below.max()) if below.size else -1.0
            top = min(t, 1.0)
            threshold = round((ceiling + top) / 2, 3)
            key = (hits, -blocked, w, n, m, top - ceiling)
            if best is None or key > best[0]:
                best = (key, Choice(w, n, m, threshold))
    assert best is not None
    return best[1]


def report(name: str, rows: list[dict[str, Any]], hit: np.ndarray, filt: OutputFilter) -> dict[str, Any]:
    """Per-form detection and the benign block rate; prints them."""
    per_form: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r, h in zip(rows, hit, strict=True):
        if r["label"] == 1:
            per_form[r["form"]][0] += int(h)
            per_form[r["form"]][1] += 1
    benign = [(r, h) for r, h in zip(rows, hit, strict=True) if r["label"] == 0]
    blocked = [r["text"] for r, h in benign if h]
    filter_blocked = [r["text"] for r, _ in benign if filt.check(r["text"]).decision == "block"]
    leaks_n = sum(v[1] for v in per_form.values())
    found = sum(v[0] for v in per_form.values())
    print(
        f"\n== {name}: {found}/{leaks_n} leaks detected, {len(blocked)}/{len(benign)} benign blocked "
        f"({100 * len(blocked) / len(benign):.2f} %; whole output filter with all anchors: "
        f"{len(filter_blocked)}/{len(benign)}, "
        f"{100 * len(filter_blocked) / len(benign):.2f} %)"
    )
    for form, (h, n) in sorted(per_form.items()):
        print(f"  {form:24s} {h}/{n}")
    for text in sorted(set(blocked) | set(filter_blocked)):
        print(f"  benign blocked: {text[:110]!r}")
    for r, h in zip(rows, hit, strict=True):
        if r["label"] == 1 and not h:
            print(f"  missed {r['form']}: {r['text'][:110]!r}")
    return {"detected": found, "leaks": leaks_n, "benign_blocked": len(blocked), "benign": len(benign)}


def timing(canary: str, embed: leaks.Embed, rows: list[dict[str, Any]]) -> None:
    """Milliseconds per check of a benign answer: the detector without and with embeddings (new and cached)."""
    texts = [r["text"] for r in rows if r["label"] == 0]
    for label, det in (
        ("no embed", LeakDetector(canary, protected(canary))),
        ("embed", LeakDetector(canary, protected(canary), embed)),
    ):
        for attempt in ("new sentences", "sentences cached"):
            t0 = time.perf_counter()
            for t in texts:
                det.reasons(t)
            ms = (time.perf_counter() - t0) / len(texts) * 1000
            print(f"  time per benign answer, {label}, {attempt}: {ms:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(E5_DIR), help="multilingual-e5 folder")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from core.embeddings import make_embedder

    logging.disable(logging.WARNING)  # the output filter logs every block
    embedder = make_embedder("sentence-transformers", args.model)
    embed = Memo(embedder.embed_queries)
    data = {p: read(p) for p in (DEV, TEST)}
    embed.prime([*default_anchors(), *(r["text"] for rows in data.values() for r in rows)])
    feats = {p: features(rows, CANARIES[p], embed, cross_fold=p == DEV) for p, rows in data.items()}
    labels = {p: np.array([r["label"] for r in rows]) for p, rows in data.items()}
    choice = choose(feats[DEV], labels[DEV])
    print(
        f"chosen on dev: alnum window {choice.window}, word {choice.ngram}-grams x {choice.matches}, "
        f"cosine >= {choice.similarity}"
    )
    in_code = Choice(leaks.ALNUM_WINDOW, leaks.TOKEN_NGRAM, leaks.TOKEN_MATCHES, leaks.SIMILARITY_THRESHOLD)
    if in_code != choice:
        print(f"NOTE: guards/leaks.py has {in_code}; the figures below use the dev choice")
    for p, name in ((DEV, "dev"), (TEST, "test")):
        filt = OutputFilter(canary=CANARIES[p], protected_texts=protected(CANARIES[p]), embed=embed)
        report(name, data[p], flagged(feats[p], choice), filt)
    print("\n== speed (dev benign answers)")
    timing(CANARIES[DEV], embedder.embed_queries, data[DEV])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
