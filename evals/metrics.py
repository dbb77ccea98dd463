"""Retrieval metrics on document ids, computed with ``ranx`` (validated against trec_eval's own outputs).

Qrels map a query id to ``{doc_id: grade}`` (graded relevance, ``0`` = not relevant); runs map a query id to
``{doc_id: score}`` (higher is better). Binary metrics (MRR, precision, hit rate, recall) count every grade
``>= 1`` as relevant, as trec_eval does; NDCG uses the grades as linear gains (trec_eval's ``ndcg_cut``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

Qrels = Mapping[str, Mapping[str, int]]
RunScores = Mapping[str, Mapping[str, float]]

# Display name → ranx metric. Hit@3: a relevant document among the top 3 (ranx's ``hit_rate``).
CATALOGUE_METRICS: dict[str, str] = {
    "MRR@10": "mrr@10",
    "P@1": "precision@1",
    "Hit@3": "hit_rate@3",
    "NDCG@5": "ndcg@5",
    "NDCG@10": "ndcg@10",
    "Recall@5": "recall@5",
}
BEIR_METRICS: dict[str, str] = {"NDCG@10": "ndcg@10", "MRR@10": "mrr@10", "Recall@100": "recall@100"}


@dataclass(frozen=True)
class MetricResult:
    """Mean scores over the queries and the score of every query, both keyed by display name."""

    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]


def scores_from_ranking(doc_ids: Iterable[str]) -> dict[str, float]:
    """Turn a ranked list of doc ids into ranx scores; a repeated id keeps its best (first) rank."""
    unique = list(dict.fromkeys(doc_ids))
    return {doc_id: float(len(unique) - i) for i, doc_id in enumerate(unique)}


def evaluate(qrels: Qrels, run: RunScores, metrics: Mapping[str, str] = CATALOGUE_METRICS) -> MetricResult:
    """Score ``run`` against ``qrels``: every query of ``qrels`` counts, a query missing from ``run`` scores 0.

    Raises ``ValueError`` for a query without any relevant document (score those separately, e.g. on
    abstention) and for run queries that are not in ``qrels``.
    """
    from ranx import Qrels as RanxQrels
    from ranx import Run as RanxRun
    from ranx import evaluate as ranx_evaluate

    if not qrels:
        raise ValueError("no queries to evaluate")
    empty = sorted(q for q, docs in qrels.items() if not any(g > 0 for g in docs.values()))
    if empty:
        raise ValueError(f"queries without relevant documents cannot be scored on ranking: {', '.join(empty)}")
    extra = sorted(set(run) - set(qrels))
    if extra:
        raise ValueError(f"run has queries that are not in the qrels: {', '.join(extra)}")
    qids = sorted(qrels)
    ranx_qrels = RanxQrels({q: {d: int(g) for d, g in qrels[q].items()} for q in qids})
    ranx_run = RanxRun({q: {d: float(s) for d, s in run.get(q, {}).items()} for q in qids})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's "unsafe cast" type-safety warnings from ranx internals
        scores = ranx_evaluate(ranx_qrels, ranx_run, list(metrics.values()), return_mean=False, make_comparable=True)
    if len(metrics) == 1:  # ranx returns the bare array for a single metric
        scores = {next(iter(metrics.values())): scores}
    per_query = {
        q: {name: float(scores[metric][i]) for name, metric in metrics.items()} for i, q in enumerate(ranx_qrels.keys())
    }
    mean = {name: sum(per_query[q][name] for q in per_query) / len(per_query) for name in metrics}
    return MetricResult(mean=mean, per_query=per_query)


def read_trec_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read a TREC qrels file (``qid iter docno grade``) or a BEIR qrels TSV (``query-id corpus-id score``)."""
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].lstrip("-").isdigit():
            qid, doc, grade = parts
        elif len(parts) == 4:
            qid, _, doc, grade = parts
        else:
            continue  # blank lines and the BEIR header
        qrels.setdefault(qid, {})[doc] = int(grade)
    return qrels


def read_trec_run(path: Path) -> dict[str, dict[str, float]]:
    """Read a TREC run file (``qid Q0 docno rank score tag``)."""
    run: dict[str, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 5:
            run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
    return run


def paired_bootstrap(
    a: Mapping[str, float], b: Mapping[str, float], *, samples: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of ``b - a`` over the shared queries and its percentile bootstrap confidence interval.

    ``a`` and ``b`` map query ids to one metric's per-query scores (``MetricResult.per_query``). The queries are
    resampled with replacement, pairs kept together; the interval excludes zero when the difference is robust.
    """
    import numpy as np

    qids = sorted(set(a) & set(b))
    if not qids:
        raise ValueError("no shared queries to compare")
    diffs = np.array([b[q] - a[q] for q in qids], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(samples, len(diffs)))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(diffs.mean()), float(lo), float(hi)
