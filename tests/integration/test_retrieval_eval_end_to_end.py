"""The retrieval evaluation harness (``make eval``) on real embeddings and a real Chroma index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS_PER_HALF = 33  # all of them: 6 configurations x 66 questions take ~30 s after start-up


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory, indexed_chroma: Path, e5_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("eval")
    env = {**os.environ, "CHROMA_PATH": str(indexed_chroma), "EMBEDDING_MODEL": str(e5_dir)}
    run = subprocess.run(
        [sys.executable, "-m", "evals.retrieval_eval", "--out", str(out)],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| dense only |" in run.stdout and "| full |" in run.stdout, run.stdout
    return out


def test_writes_json_markdown_and_plot(eval_run: Path):
    for name in ("result.json", "report.md", "metrics.png"):
        assert (eval_run / name).stat().st_size > 0, name
    assert (eval_run / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (eval_run / "report.md").read_text()
    assert "## test half" in report and "## dev half" in report and "Top hit per document" in report


def test_metrics_are_fractions_for_every_question_and_configuration(eval_run: Path):
    result = json.loads((eval_run / "result.json").read_text())
    assert result["meta"]["documents"] == 21
    for half in ("test", "dev"):
        summary = result["summary"][half]
        assert list(summary) == ["dense only", "+ BM25", "+ expansion", "+ rerank", "+ BM25 + expansion", "full"]
        for config, row in summary.items():
            for metric in ("MRR@10", "P@1", "Hit@3", "NDCG@5", "NDCG@10", "Recall@5"):
                assert 0.0 <= row[metric] <= 1.0, (half, config, metric)
            outcomes = result["questions"][half][config]
            assert len(outcomes) == QUESTIONS_PER_HALF
            assert all(0.0 <= v <= 1.0 for o in outcomes for v in o["metrics"].values())
        # Retrieval works at all on real embeddings: far above chance (1 relevant doc of 21 at random).
        assert summary["dense only"]["Hit@3"] >= 0.8


def test_hybrid_finds_at_least_what_dense_finds_in_the_top_3_on_the_dev_half(eval_run: Path):
    # Measured: dev half 1.000 (+ BM25) vs 0.966 (dense only). Not asserted on the frozen test half, where
    # + BM25 alone measured 0.966 against dense's 1.000 (t11, vague: the krabpaal fell out of the top 3): the data do
    # not support "BM25 never hurts" there, and the test half is not tuned on.
    summary = json.loads((eval_run / "result.json").read_text())["summary"]["dev"]
    assert summary["+ BM25"]["Hit@3"] >= summary["dense only"]["Hit@3"]
    assert summary["+ BM25"]["MRR@10"] >= summary["dense only"]["MRR@10"]
