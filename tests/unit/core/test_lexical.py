"""BM25 (core/lexical.py): tokeniser, index over the Chroma collection, fusion with dense hits, the retrieve node."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.fusion import reciprocal_rank_fusion
from core.lexical import LexicalIndex, index_text, tokenize, with_dense_scores
from core.resources import set_resources
from core.vectorstore import Hit
from fakes import ephemeral_store, fake_resources, write_catalogue
from graph.context import Context
from graph.nodes import retrieve
from ingest.pipeline import ingest


def chunk(cid: str, text: str, **meta: str) -> Hit:
    return Hit(chunk_id=cid, doc_id=cid.split("#")[0], title=cid, text=text, score=0.0, metadata=meta)


def test_tokenize_keeps_codes_and_numbers_and_folds_accents():
    terms = tokenize("Past de FW-4 op KH-LB-1001? Verzending naar België kost €4,95.")
    assert terms[:2] == ["past", "fw-4"]  # "de" is a stop word
    assert {"fw", "4", "kh-lb-1001", "kh", "lb", "1001", "belgie", "4,95", "95"} <= set(terms)
    assert "de" not in terms and "naar" not in terms
    assert "België" not in terms and "belgië" not in terms
    assert tokenize("What is THE price?") == ["price"]
    assert tokenize("?!") == []


def test_index_text_adds_only_fields_the_chunk_does_not_quote():
    text = index_text("Overdekte kattenbak.", {"sku": "KH-LB-2040", "brand": "CatCave", "price_eur": 39.95})
    assert "KH-LB-2040" in text and "CatCave" in text and "39.95" not in text
    assert index_text("CatCave Classic 40", {"name": "CatCave Classic 40"}) == "CatCave Classic 40"


def test_bm25_ranks_by_rare_terms_and_finds_codes_in_metadata():
    index = LexicalIndex(
        [
            chunk("a#0", "Overdekte kattenbak van 40 liter.", sku="KH-LB-2040"),
            chunk("b#0", "Overdekte kattenbak van 55 liter.", sku="KH-LB-2055"),
            chunk("c#0", "Verzending kost 4,95 euro."),
        ]
    )
    assert index.search("KH-LB-2055", 5)[0].doc_id == "b"
    hits = index.search("kattenbak 40 liter", 5)
    assert [h.doc_id for h in hits] == ["a", "b"]  # "c" shares no term and is left out
    assert hits[0].score > hits[1].score > 0
    assert index.search("hondenvoer", 5) == [] and index.search("de het", 5) == []
    assert len(index.search("kattenbak", 1)) == 1


def test_search_many_skips_variants_with_the_same_terms():
    index = LexicalIndex([chunk("a#0", "verzending kost 4,95"), chunk("b#0", "retourneren binnen 30 dagen")])
    rankings = index.search_many(["Wat kost verzending?", "kost verzending", "retourneren"], 5)
    assert [[h.doc_id for h in r] for r in rankings] == [["a"], ["b"]]


def test_empty_index_returns_nothing():
    assert LexicalIndex([]).search("kattenbak", 3) == []


def test_index_from_the_chroma_collection(tmp_path):
    res = fake_resources(tmp_path)
    chunks = res.store.all_chunks(page=1)  # page by page
    assert len(chunks) == res.store.count() == len({c.chunk_id for c in chunks})
    index = LexicalIndex.from_store(res.store)
    assert len(index) == len(chunks)
    assert index.search("KH-LB-2040", 3)[0].doc_id == "catcave-classic-40"
    assert index.search("verzendig belgie", 3)[0].doc_id == "verzending"  # accent folded; typo word skipped


def test_refresh_rebuilds_only_for_another_collection_version(tmp_path):
    old = fake_resources(tmp_path / "old")
    index = LexicalIndex.from_store(old.store)
    assert index.source == old.store.collection.name
    assert not index.refresh(old.store, old.store.collection)  # same version: nothing to do
    new_store = ephemeral_store(old.embedder)
    docs = {
        "products/fw4.md": "---\nid: feedwise-smart-4\ntitle: FeedWise Smart 4\nsku: KH-VA-3004\n---\nVoerautomaat.\n"
    }
    ingest(write_catalogue(tmp_path / "new", docs), new_store, old.embedder, chunk_tokens=200, overlap_tokens=20)
    assert index.search("voerautomaat", 3) == []
    assert index.refresh(new_store, new_store.collection)
    assert index.source == new_store.collection.name and len(index) == new_store.count()
    assert index.search("KH-VA-3004", 3)[0].doc_id == "feedwise-smart-4"
    assert index.search("verzending", 3) == []  # the old version's chunks are gone


def test_similarities_equal_the_dense_search_scores(tmp_path):
    res = fake_resources(tmp_path)
    vector = res.embedder.embed_queries(["afvalbak 9 liter"])[0]
    dense = res.store.search(vector, 10)
    sims = res.store.similarities(vector, [h.chunk_id for h in dense] + ["gone#0"])
    assert set(sims) == {h.chunk_id for h in dense}
    for h in dense:
        assert sims[h.chunk_id] == pytest.approx(h.score, abs=1e-5)


def test_bm25_hits_get_cosine_scores_before_fusion(tmp_path):
    res = fake_resources(tmp_path)
    question = "kost het naar belgie"
    vector = res.embedder.embed_queries([question])[0]
    dense = [res.store.search(vector, 1)]
    lexical = LexicalIndex.from_store(res.store).search_many([question], 10)
    assert max(h.score for r in lexical for h in r) > 1.0  # raw BM25: not comparable with a cosine
    rescored = with_dense_scores(lexical, dense, res.store, vector)
    assert [[h.chunk_id for h in r] for r in rescored] == [[h.chunk_id for h in r] for r in lexical]  # order kept
    sims = res.store.similarities(vector, [h.chunk_id for r in lexical for h in r])
    dense_ids = {h.chunk_id for h in dense[0]}
    assert any(h.chunk_id not in dense_ids for h in rescored[0])  # some only BM25 found: scored from Chroma
    for h in rescored[0]:
        assert h.score == pytest.approx(sims[h.chunk_id], abs=1e-5)
    # In a tie of fused ranks the dense (cosine) score decides, not the BM25 score.
    fused = reciprocal_rank_fusion([*dense, *rescored])
    assert all(h.score <= 1.0 + 1e-6 for h, _ in fused)


async def _retrieve(res, question: str, **ctx) -> list[dict]:
    set_resources(res)
    runtime = SimpleNamespace(context=Context(**ctx))
    return (await retrieve({"question": question, "queries": [question]}, runtime))["candidates"]


async def test_retrieve_node_fuses_bm25_only_when_enabled(tmp_path):
    res = fake_resources(tmp_path)
    res.lexical = LexicalIndex.from_store(res.store)
    question = "kost het naar belgie"  # the hashed words miss "België"; BM25 folds the accent
    vector = res.embedder.embed_queries([question])[0]
    dense_order = [h.chunk_id for h in res.store.search(vector, 10)]

    off = await _retrieve(res, question, hybrid_bm25=False)
    assert [c["chunk_id"] for c in off] == dense_order
    assert off[0]["doc_id"] != "verzending"
    on = await _retrieve(res, question, hybrid_bm25=True)
    assert on[0]["doc_id"] == "verzending"
    assert {c["chunk_id"] for c in on} == set(dense_order)  # same pool on this tiny catalogue, new order
    sims = res.store.similarities(vector, [c["chunk_id"] for c in on])
    assert all(c["score"] == pytest.approx(sims[c["chunk_id"]], abs=1e-5) for c in on)  # cosine, not BM25
    assert on[0]["rrf"] > on[-1]["rrf"]


async def test_retrieve_node_without_index_is_dense_only(tmp_path):
    res = fake_resources(tmp_path)  # no LexicalIndex on the resources
    vector = res.embedder.embed_queries(["KH-LB-2040"])[0]
    got = await _retrieve(res, "KH-LB-2040", hybrid_bm25=True)
    assert [c["chunk_id"] for c in got] == [h.chunk_id for h in res.store.search(vector, 10)]
