"""The cross-encoder reranker's passage cut and its weighted fusion prior (a fake model, no weights)."""

from __future__ import annotations

import threading

from core.reranker import CrossEncoderReranker


class _FakeCrossEncoder:
    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def predict(self, pairs, batch_size):  # type: ignore[no-untyped-def]
        self.pairs += list(pairs)
        return [len(p) / 10 for _, p in pairs]


def _reranker(prior_weight: float, max_chars: int | None) -> CrossEncoderReranker:
    rr = object.__new__(CrossEncoderReranker)
    rr._model = _FakeCrossEncoder()
    rr._lock = threading.Lock()
    rr.prior_weight, rr.max_chars = prior_weight, max_chars
    return rr


def test_prior_weight_adds_the_fusion_prior() -> None:
    rr = _reranker(1.0, None)
    assert rr.score("q", ["ab", "abcd"], [1.0, 0.0]) == [1.2, 0.4]
    assert rr.score_batch([("q", ["ab"], [0.5]), ("x", [], [])]) == [[0.7], []]
    assert _reranker(0.0, None).score("q", ["ab", "abcd"], [1.0, 0.0]) == [0.2, 0.4]


def test_passages_are_cut_before_tokenising() -> None:
    rr = _reranker(0.0, 3)
    assert rr.score("q", ["abcdefgh"], [0.0]) == [0.3]
    assert rr._model.pairs == [("q", "abc")]
