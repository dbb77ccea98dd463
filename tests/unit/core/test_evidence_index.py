"""The run-time line index: loading per index version, selection by dot product, budget, catalogue names."""

from __future__ import annotations

import threading
import uuid

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

import core.evidence as evidence
from core.evidence import LineIndex, SelectionWeights, answer_types, bm25_scores, estimate_tokens, line_tokens
from core.vectorstore import VectorStore
from fakes import CATALOGUE, HashEmbedder, ephemeral_store, write_catalogue
from ingest.pipeline import ingest
from ingest.publish import publish

KW = {"chunk_tokens": 200, "overlap_tokens": 20}
SAME = "Deze zin staat letterlijk in allebei de documenten."
DOCS = {
    **CATALOGUE,
    "policies/a.md": f"---\nid: doc-a\ntitle: Document A\ndoc_type: policy\n---\n{SAME}\nAlleen in A staat dit.\n",
    "policies/b.md": f"---\nid: doc-b\ntitle: Document B\ndoc_type: policy\n---\n{SAME}\nAlleen in B staat dat.\n",
}


@pytest.fixture
def indexed(tmp_path):
    emb = HashEmbedder()
    store = ephemeral_store(emb)
    ingest(write_catalogue(tmp_path, DOCS), store, emb, **KW)
    return emb, store, LineIndex.from_store(store)


def query(emb: HashEmbedder, text: str) -> np.ndarray:
    return emb.embed_queries([text])[0]


def test_loads_every_line_of_the_version_grouped_by_document(indexed, monkeypatch):
    _, store, index = indexed
    assert index.version == store.collection.name
    assert len(index) == store.lines_collection().count() > 0
    lines = index.lines_of("purrclean-autobox-9")
    assert [line.line for line in lines] == list(range(len(lines)))
    assert lines[0].text == "Product: PurrClean AutoBox 9" and lines[0].product == "PurrClean AutoBox 9"
    assert all(line.version == store.collection.name for line in lines)
    assert index.lines_of("verzending")[0].product == "" and index.lines_of("gone") == []
    monkeypatch.setattr(evidence, "LOAD_PAGE", 3)  # page by page: the same lines
    paged = LineIndex.from_store(store)
    assert len(paged) == len(index) and paged.lines_of("verzending") == index.lines_of("verzending")


def test_catalogue_names(indexed):
    _, _, index = indexed
    assert index.products() == {
        "PurrClean AutoBox 9": "purrclean-autobox-9",
        "CatCave Classic 40": "catcave-classic-40",
    }
    assert index.brands() == {"PurrClean", "CatCave"}


def test_select_returns_the_answering_line_first_in_score_order(indexed):
    emb, store, index = indexed
    question = "Hoeveel liter is de afvalbak?"
    got = index.select(query(emb, question), question, ["purrclean-autobox-9", "verzending"])
    assert got and "afvalbak van 9 liter" in got[0].text
    assert [g.score for g in got] == sorted((g.score for g in got), reverse=True)
    assert got[0].version == store.collection.name and got[0].product == "PurrClean AutoBox 9"
    assert {g.doc_id for g in got} <= {"purrclean-autobox-9", "verzending"}


def weighted(store: VectorStore, **weights: float) -> LineIndex:
    index = LineIndex(SelectionWeights(**{"centred": 0.0, "lexical": 0.0, "answer_type": 0.0, "rank": 0.0, **weights}))
    index.refresh(store, store.collection)
    return index


def test_lexical_bonus_finds_a_product_code(indexed):
    emb, store, _ = indexed
    question = "Welk product heeft artikelnummer KH-LB-2040?"
    docs = ["purrclean-autobox-9", "catcave-classic-40"]
    vector = query(emb, "PurrClean AutoBox artikelnummer")  # the dense side points at the other product
    dense = weighted(store).select(vector, question, docs, max_lines=1)
    assert dense[0].doc_id == "purrclean-autobox-9"
    got = weighted(store, lexical=1.0).select(vector, question, docs, max_lines=1)
    assert got[0].text == "Artikelnummer (SKU): KH-LB-2040"


def test_budget_max_lines_and_duplicates(indexed):
    emb, _, index = indexed
    question = "Wat staat er in de documenten?"
    docs = ["doc-a", "doc-b", "purrclean-autobox-9", "catcave-classic-40", "verzending", "retourneren"]
    vector = query(emb, question)
    wide = index.select(vector, question, docs, budget_tokens=10_000, max_lines=50)
    assert [line.text for line in wide].count(SAME) == 1  # the same sentence in two documents: quoted once
    for budget in (40, 80, 300):
        got = index.select(vector, question, docs, budget_tokens=budget, max_lines=50)
        assert estimate_tokens(got) <= budget
    assert len(index.select(vector, question, docs, max_lines=2)) == 2
    assert index.select(vector, question, docs, budget_tokens=1) == []
    assert index.select(vector, question, ["gone"]) == [] and LineIndex().select(vector, question, docs) == []


def test_token_estimate_counts_each_title_once():
    lines = LineIndex().lines_of("x")
    assert estimate_tokens(lines) == 0
    a = evidence.EvidenceLine(doc_id="a", line=0, title="T" * 7, text="x" * 35)
    b = evidence.EvidenceLine(doc_id="a", line=1, title="T" * 7, text="y" * 8)
    assert line_tokens(a.text) == 10 and line_tokens(b.text) == 3
    assert estimate_tokens([a, b]) == 10 + 3 + 2 + evidence.DOC_OVERHEAD_TOKENS


def test_document_rank_prior(indexed):
    emb, store, _ = indexed
    question = "Alleen in A staat dit."
    assert weighted(store).select(query(emb, question), question, ["doc-b", "doc-a"], max_lines=1)[0].doc_id == "doc-a"
    prior = weighted(store, rank=1.0).select(query(emb, question), question, ["doc-b", "doc-a"], max_lines=1)
    assert prior[0].doc_id == "doc-b"  # the better-ranked document wins under a strong prior


def test_scoring_helpers():
    scores = bm25_scores(["kh-lb-1001"], [["kattenbak"], ["kh-lb-1001", "kh"], []])
    assert scores.tolist() == [0.0, 1.0, 0.0]
    assert bm25_scores([], [["a"]]).tolist() == [0.0]
    texts = ["Prijs: € 54,95", "Elke 2 tot 3 weken verversen", "Een mooie bak"]
    assert answer_types("Wat kost de bak?", texts).tolist() == [1.0, 0.0, 0.0]
    assert answer_types("Hoe vaak moet ik verversen?", texts).tolist() == [0.0, 1.0, 0.0]
    assert answer_types("Hoe lang garantie?", ["Elektrische apparaten: 2 jaar", "Merk: X"]).tolist() == [1.0, 0.0]
    assert answer_types("Welke kleur?", texts).tolist() == [0.0, 0.0, 0.0]


def test_refresh_follows_the_index_version_and_is_thread_safe(tmp_path):
    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True))
    base, emb = f"ev-{uuid.uuid4().hex[:8]}", HashEmbedder()
    root = write_catalogue(tmp_path / "c")
    publish(root, client, base, emb, **KW)
    store = VectorStore(client, base, emb.name, refresh_s=0.0)
    index = LineIndex.from_store(store)
    assert not index.refresh(store, store.current())  # same version: nothing to do
    old = index.version
    (root / "policies" / "verzending.md").write_text(
        CATALOGUE["policies/verzending.md"].replace("4,95", "5,95"), encoding="utf-8"
    )
    done = publish(root, client, base, emb, **KW)
    question = "Wat kost verzending?"
    seen: list[set[str]] = []

    def read() -> None:
        for _ in range(20):
            got = index.select(query(emb, question), question, ["verzending"], budget_tokens=1000, max_lines=20)
            seen.append({g.version for g in got})

    reader = threading.Thread(target=read)
    reader.start()
    assert index.refresh(store, store.current())
    reader.join(timeout=30)
    assert index.version == done.active != old
    assert all(len(versions) == 1 for versions in seen)  # one version per selection, never a mix
    texts = [line.text for line in index.lines_of("verzending")]
    assert any("5,95" in t for t in texts) and not any("4,95" in t for t in texts)
