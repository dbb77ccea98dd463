"""The BEIR runner on a tiny synthetic BEIR folder, with the test hash embedder (offline, seconds)."""

from __future__ import annotations

import json

import pytest

from core.settings import get_settings
from evals import beir_eval
from fakes import HashEmbedder

DOCS = {
    "d1": ("Feline hydration", "Cats drink more water from a running fountain than from a bowl."),
    "d2": ("Litter box odour", "Activated carbon filters reduce the smell of a closed litter box."),
    "d3": ("Kitten nutrition", "Kittens need more protein and energy than adult cats."),
    "d4": ("Scratching", "A sisal scratching post protects furniture from claws."),
}
QUERIES = {"q1": "do cats drink more from a water fountain", "q2": "how to reduce litter box smell"}
QRELS = {"q1": "d1", "q2": "d2"}


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": t, "text": x}) for k, (t, x) in DOCS.items()), encoding="utf-8"
    )
    (tmp_path / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "text": v}) for k, v in QUERIES.items()), encoding="utf-8"
    )
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in QRELS.items()), encoding="utf-8"
    )
    monkeypatch.setattr(beir_eval, "make_embedder", lambda *a, **k: HashEmbedder())
    monkeypatch.setattr(beir_eval, "CACHE", tmp_path / "cache")
    monkeypatch.setenv("RERANKER_PROVIDER", "lexical")
    get_settings.cache_clear()
    return tmp_path


def test_every_configuration_finds_the_judged_document_first(folder):
    result = beir_eval.run(folder, None)
    assert result["documents"] == 4 and result["queries"] == 2
    assert set(result["results"]) == set(beir_eval.CONFIGS)
    for config, r in result["results"].items():
        assert r["NDCG@10"] == pytest.approx(1.0), config
        assert r["MRR@10"] == pytest.approx(1.0) and r["Recall@100"] == pytest.approx(1.0)
    assert len(list((folder / "cache").glob("*/vectors.npy"))) == 1  # the corpus vectors are cached ...


def test_cached_vectors_are_reused(folder, monkeypatch):
    beir_eval.run(folder, None)

    class NoPassages(HashEmbedder):
        def embed_passages(self, texts):
            raise AssertionError("the corpus must come from the cache")

    monkeypatch.setattr(beir_eval, "make_embedder", lambda *a, **k: NoPassages())
    assert beir_eval.run(folder, None)["results"]["dense"]["NDCG@10"] == pytest.approx(1.0)


def test_an_interrupted_embedding_resumes_from_its_parts(folder, monkeypatch):
    monkeypatch.setattr(beir_eval, "PART", 2)
    calls: list[int] = []

    class Flaky(HashEmbedder):
        def embed_passages(self, texts):
            calls.append(len(texts))
            if len(calls) == 2:
                raise RuntimeError("killed")
            return super().embed_passages(texts)

    corpus, _, _ = beir_eval.load_beir(folder)
    with pytest.raises(RuntimeError):
        beir_eval.corpus_vectors(corpus, Flaky(), folder)
    seen: list[str] = []

    class Counting(HashEmbedder):
        def embed_passages(self, texts):
            seen.extend(texts)
            return super().embed_passages(texts)

    vectors = beir_eval.corpus_vectors(corpus, Counting(), folder)
    assert seen == [h.text for h in corpus[2:]]  # only the part that was lost
    assert vectors.shape == (4, 256)
    assert (vectors == HashEmbedder().embed_passages([h.text for h in corpus])).all()


def test_subset_keeps_the_judged_documents(folder):
    corpus, queries, qrels = beir_eval.load_beir(folder, max_queries=1, max_docs=2)
    assert list(queries) == ["q1"] and qrels == {"q1": {"d1": 1}}
    assert {h.doc_id for h in corpus} == {"d1", "d2"}


def test_markdown_table_lists_each_configuration(folder):
    md = beir_eval.markdown(beir_eval.run(folder, None))
    assert all(f"| {c} |" in md for c in beir_eval.CONFIGS)


def test_the_reranker_gets_the_fusion_order_as_its_prior(folder):
    class Recording:
        name = "recording"

        def __init__(self) -> None:
            self.priors: list[list[float]] = []

        def score(self, question, passages, prior):  # type: ignore[no-untyped-def]
            self.priors.append(list(prior))
            return list(prior)

    corpus, queries, _ = beir_eval.load_beir(folder)
    embedder, reranker = HashEmbedder(), Recording()
    vectors = embedder.embed_passages([h.text for h in corpus])
    bm25 = beir_eval.LexicalIndex(corpus)
    for text in queries.values():
        args = (text, embedder.embed_queries([text])[0], corpus, vectors, bm25)
        assert beir_eval.retrieve("fusion+rerank", *args, reranker) == beir_eval.retrieve("fusion", *args, reranker)
    for prior in reranker.priors:  # normalised reciprocal-rank-fusion scores, best first (not raw cosine/BM25)
        assert prior[0] == 1.0 and prior == sorted(prior, reverse=True)
