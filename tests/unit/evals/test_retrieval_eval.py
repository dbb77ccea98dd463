"""The retrieval evaluation harness on the scripted test catalogue (hash embedder, in-memory Chroma)."""

from __future__ import annotations

import json

from core.lexical import LexicalIndex
from core.resources import set_resources
from core.settings import get_settings
from evals import eval_report
from evals.retrieval_eval import CONFIGS, Outcome, Question, load_questions, run_question, score_half
from fakes import fake_resources

QUESTIONS = [
    Question("q1", "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?", "nl", "simple",
             {"purrclean-autobox-9": 2}),
    Question("q2", "kost het naar belgie", "nl", "typo", {"verzending": 2}),
    Question("q3", "Verkopen jullie hondenvoer?", "nl", "out_of_catalogue", {}),
]  # fmt: skip


async def test_runs_every_configuration_through_the_graph_nodes(tmp_path):
    res = fake_resources(tmp_path)
    res.lexical = LexicalIndex.from_store(res.store)
    set_resources(res)
    by_name = {c.name: c for c in CONFIGS}
    dense = [await run_question(q, by_name["dense only"], get_settings(), 0.0) for q in QUESTIONS]
    hybrid = [await run_question(q, by_name["+ BM25"], get_settings(), 0.0) for q in QUESTIONS]
    full = [await run_question(q, by_name["full"], get_settings(), 0.0) for q in QUESTIONS]
    assert dense[0].docs[0] == "purrclean-autobox-9"
    assert dense[1].docs[0] != "verzending" and hybrid[1].docs[0] == "verzending"  # BM25 folds "België"
    assert all(len(o.docs) == len(set(o.docs)) for o in dense + hybrid + full)  # one entry per document
    assert not any(o.abstained for o in full[:2])
    assert full[2].abstained and full[2].routed == "other_species" and full[2].docs == []  # chains.scope, no search
    strict = await run_question(QUESTIONS[0], by_name["full"], get_settings(), 0.99)
    assert strict.abstained and strict.docs == [] and strict.routed == ""  # nothing above min_relevance

    summary = score_half(QUESTIONS, hybrid)
    assert summary["MRR@10"] == 1.0 and summary["Hit@3"] == 1.0
    assert summary["Abstention (OOC)"] == 1.0 and summary["Top-hit docs"] == 2
    assert score_half(QUESTIONS, dense)["P@1"] == 0.5


async def test_metrics_rank_every_candidate_and_the_prompt_gets_the_first_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_TOP_N", "1")
    get_settings.cache_clear()
    res = fake_resources(tmp_path)
    res.lexical = LexicalIndex.from_store(res.store)
    set_resources(res)
    for config in CONFIGS:
        out = await run_question(QUESTIONS[0], config, get_settings(), 0.0)
        assert len(out.prompt_docs) == 1 and len(out.docs) > 1, config.name  # 4 documents in the catalogue
        assert out.docs[0] == out.prompt_docs[0], config.name  # the prompt's order is a prefix of the ranking


def test_report_files_misses_and_coverage(tmp_path):
    outcomes = {
        "dense only": [Outcome("q1", ["purrclean-autobox-9"], 0.9, False, 1.0),
                       Outcome("q2", ["retourneren", "verzending"], 0.8, False, 1.0),
                       Outcome("q3", ["verzending"], 0.7, False, 1.0)],
        "full": [Outcome("q1", ["purrclean-autobox-9"], 0.9, False, 1.0),
                 Outcome("q2", ["verzending"], 0.8, False, 1.0),
                 Outcome("q3", [], 0.7, True, 1.0)],
    }  # fmt: skip
    summaries = {"test": {name: score_half(QUESTIONS, outs) for name, outs in outcomes.items()}}
    assert summaries["test"]["full"]["Abstention (OOC)"] == 1.0
    catalogue = ["purrclean-autobox-9", "retourneren", "verzending"]
    meta = {"date": "now", "embedding_model": "hash", "reranker": "lexical", "chunks": 4, "documents": 3,
            "retrieve_k": 10, "rerank_top_n": 5, "min_relevance": 0.0, "configs": []}  # fmt: skip
    paths = eval_report.write_all(tmp_path, meta, {"test": QUESTIONS}, {"test": outcomes}, summaries, catalogue)
    assert [p.name for p in paths] == ["result.json", "report.md", "metrics.png"]
    report = paths[1].read_text()
    assert "| q2: kost het naar belgie | typo | ✗ | ✓ |" in report
    assert "| q3: Verkopen jullie hondenvoer? | out_of_catalogue | ✗ | ✓ |" in report
    assert "q1:" not in report.split("### Misses")[1].split("###")[0]  # never missed: not listed
    assert "never the top hit: retourneren" in report
    result = json.loads(paths[0].read_text())
    delta, lo, hi = result["mrr_differences"]["test"]["full vs dense only"]
    assert delta == 0.25 and lo <= delta <= hi
    assert "| dense only |" in eval_report.format_tables(summaries)


def test_questions_files_parse_and_follow_the_readme():
    from evals.retrieval_eval import HALVES

    for half, path in HALVES.items():
        qs = load_questions(path)
        if half == "dev2":  # the second dev set (session 10): 60 in-catalogue questions, 20 out of catalogue
            assert len(qs) == 80 and all(q.qid.startswith("e") for q in qs)
            assert sum(not q.relevant for q in qs) == 20
            continue
        assert len(qs) == 33 and all(q.qid.startswith(half[0]) for q in qs)
        assert sum(not q.relevant for q in qs) == 4  # out of catalogue: scored on abstention
