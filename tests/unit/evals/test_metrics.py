"""The metric code: trec_eval's own expected outputs, and tiny hand-made cases."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from evals.metrics import BEIR_METRICS, CATALOGUE_METRICS, evaluate, read_trec_qrels, read_trec_run, scores_from_ranking

ROOT = Path(__file__).resolve().parents[3]
KNOWN = ROOT.parent / "shared" / "data" / "trec_eval_known_answers"

# trec_eval measure → ranx metric (ranx's ``precision@k``/``recall@k`` are trec_eval's ``P_k``/``recall_k``).
TREC_TO_RANX = {
    "map": "map",
    "recip_rank": "mrr",
    "ndcg_cut_5": "ndcg@5",
    "ndcg_cut_10": "ndcg@10",
    "P_5": "precision@5",
    "P_10": "precision@10",
    "recall_5": "recall@5",
    "recall_100": "recall@100",
    "success_1": "hit_rate@1",
}


def _known_dir() -> Path:
    if not KNOWN.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{KNOWN} is missing; CI must provide ../shared/data/trec_eval_known_answers")
        pytest.skip(f"{KNOWN} not found (the shared data folder sits next to the repository)")
    return KNOWN


def _expected(path: Path) -> dict[tuple[str, str], float]:
    """(measure, query id or 'all') → value, from a trec_eval output file."""
    out: dict[tuple[str, str], float] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in TREC_TO_RANX:
            out[(parts[0], parts[1])] = float(parts[2])
    return out


def test_reproduces_trec_eval_means():
    d = _known_dir()
    expected = _expected(d / "out.test.a")
    result = evaluate(read_trec_qrels(d / "qrels.test"), read_trec_run(d / "results.test"), TREC_TO_RANX)
    checked = [m for m in TREC_TO_RANX if (m, "all") in expected]
    assert {"map", "recip_rank", "ndcg_cut_10", "P_10"} <= set(checked)
    for measure in checked:
        assert result.mean[measure] == pytest.approx(expected[(measure, "all")], abs=5e-5), measure
    # The figures quoted in the issue, literally.
    assert round(result.mean["map"], 4) == 0.1785
    assert round(result.mean["recip_rank"], 4) == 0.4064
    assert round(result.mean["ndcg_cut_10"], 4) == 0.3016
    assert round(result.mean["P_10"], 4) == 0.3000


def test_reproduces_trec_eval_per_query():
    d = _known_dir()
    expected = _expected(d / "out.test.aq")
    result = evaluate(read_trec_qrels(d / "qrels.test"), read_trec_run(d / "results.test"), TREC_TO_RANX)
    per_query = [(m, q) for (m, q) in expected if q != "all"]
    assert len(per_query) >= 9 * 3
    for measure, qid in per_query:
        assert result.per_query[qid][measure] == pytest.approx(expected[(measure, qid)], abs=5e-5), (measure, qid)


def test_hand_made_graded_case():
    qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 2}, "q3": {"d": 1}}
    run = {
        "q1": scores_from_ranking(["x", "a", "b"]),  # first relevant at rank 2
        "q2": scores_from_ranking(["c"]),  # perfect
        "q3": scores_from_ranking(["x", "y", "z", "d"]),  # relevant at rank 4: outside Hit@3
    }
    r = evaluate(qrels, run)
    assert set(r.mean) == set(CATALOGUE_METRICS)
    assert r.per_query["q1"]["MRR@10"] == pytest.approx(0.5)
    assert r.per_query["q3"]["MRR@10"] == pytest.approx(0.25)
    assert r.mean["MRR@10"] == pytest.approx((0.5 + 1 + 0.25) / 3)
    assert r.mean["P@1"] == pytest.approx(1 / 3)
    assert r.mean["Hit@3"] == pytest.approx(2 / 3)
    assert r.per_query["q3"]["Recall@5"] == 1.0 and r.per_query["q1"]["Recall@5"] == 1.0
    # NDCG with linear gains: DCG = 2/log2(3) + 1/log2(4); ideal = 2 + 1/log2(3).
    dcg = 2 / math.log2(3) + 1 / 2
    idcg = 2 + 1 / math.log2(3)
    assert r.per_query["q1"]["NDCG@5"] == pytest.approx(dcg / idcg)
    assert r.per_query["q2"]["NDCG@10"] == 1.0


def test_cut_offs_and_missing_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": scores_from_ranking([f"n{i}" for i in range(10)] + ["a"])}  # rank 11; q2 not run at all
    r = evaluate(qrels, run, {"MRR@10": "mrr@10", "Recall@100": "recall@100"})
    assert r.per_query["q1"]["MRR@10"] == 0.0  # beyond the cut-off
    assert r.per_query["q1"]["Recall@100"] == 1.0
    assert r.per_query["q2"] == {"MRR@10": 0.0, "Recall@100": 0.0}


def test_scores_from_ranking_keeps_best_rank_of_duplicates():
    scores = scores_from_ranking(["a", "b", "a", "c"])
    assert sorted(scores, key=lambda d: -scores[d]) == ["a", "b", "c"]


def test_rejects_unscorable_input():
    with pytest.raises(ValueError, match="without relevant"):
        evaluate({"q1": {"a": 1}, "ooc": {}}, {"q1": {"a": 1.0}})
    with pytest.raises(ValueError, match="not in the qrels"):
        evaluate({"q1": {"a": 1}}, {"q1": {"a": 1.0}, "q9": {"a": 1.0}})


def test_beir_metric_set():
    r = evaluate({"q": {"a": 1, "b": 1}}, {"q": scores_from_ranking(["a", "x", "b"])}, BEIR_METRICS)
    assert r.mean["Recall@100"] == 1.0 and r.mean["MRR@10"] == 1.0 and 0 < r.mean["NDCG@10"] < 1


def test_reads_beir_tsv_qrels(tmp_path):
    p = tmp_path / "test.tsv"
    p.write_text("query-id\tcorpus-id\tscore\n1\t31715818\t1\n1\t14717500\t2\n")
    assert read_trec_qrels(p) == {"1": {"31715818": 1, "14717500": 2}}


def test_paired_bootstrap_interval():
    from evals.metrics import paired_bootstrap

    a = {f"q{i}": 0.5 for i in range(40)}
    better = {q: 1.0 for q in a}
    mean, lo, hi = paired_bootstrap(a, better)
    assert mean == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    mixed = {q: (1.0 if i % 2 else 0.0) for i, q in enumerate(a)}  # half up, half down: no robust change
    mean, lo, hi = paired_bootstrap(a, mixed)
    assert mean == pytest.approx(0.0) and lo < 0 < hi
    one_better = {**a, "q0": 1.0}  # one query of 40 improves: the interval reaches zero
    mean, lo, hi = paired_bootstrap(a, one_better)
    assert mean == pytest.approx(0.5 / 40) and lo == 0.0 and hi > 0
    assert paired_bootstrap(a, mixed, seed=3) == paired_bootstrap(a, mixed, seed=3)  # reproducible
    with pytest.raises(ValueError, match="shared"):
        paired_bootstrap({"x": 1.0}, {"y": 1.0})
