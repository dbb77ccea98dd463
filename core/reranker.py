"""Rerankers: re-score retrieved candidates for a question."""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from core.settings import RerankerProvider, Settings

logger = logging.getLogger(__name__)

VALID_RERANKER_PROVIDERS: tuple[str, ...] = ("cross-encoder", "lexical", "none")
_WORD = re.compile(r"[\w€,.-]+", re.UNICODE)


class Reranker(Protocol):
    """Scores (question, passage) pairs; higher is more relevant."""

    name: str

    def score(self, question: str, passages: Sequence[str], prior: Sequence[float]) -> list[float]:
        """Return one score per passage. ``prior`` holds the retrieval scores."""


def _terms(text: str) -> list[str]:
    return [w.strip(".,-").lower() for w in _WORD.findall(text) if len(w.strip(".,-")) > 1]


class LexicalReranker:
    """Dense score plus an IDF-weighted term-overlap bonus computed over the candidates.

    Cheap and real: it lifts candidates that share rare terms with the question
    (product codes, brand names, numbers) above ones that are only semantically close.
    """

    name = "lexical"

    def __init__(self, weight: float = 0.15) -> None:
        self.weight = weight

    def score(self, question: str, passages: Sequence[str], prior: Sequence[float]) -> list[float]:
        """Combine ``prior`` with the normalised IDF overlap of question terms."""
        q_terms = set(_terms(question))
        docs = [Counter(_terms(p)) for p in passages]
        n = len(docs)
        df = Counter(t for d in docs for t in set(d) if t in q_terms)
        idf = {t: math.log(1 + n / df[t]) for t in df}
        norm = sum(math.log(1 + n) for _ in q_terms) or 1.0
        return [
            float(p) + self.weight * sum(idf[t] for t in q_terms if t in d) / norm
            for p, d in zip(prior, docs, strict=True)
        ]


class PassThroughReranker:
    """Keeps the retrieval order (reranking switched off)."""

    name = "none"

    def score(self, question: str, passages: Sequence[str], prior: Sequence[float]) -> list[float]:
        """Return the retrieval scores unchanged."""
        return [float(p) for p in prior]


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` by model name or local path.

    Each (question, passage) pair is cut to ``max_length`` tokens (the passage is truncated; with the
    catalogue's 512-token chunks that keeps the title, the product facts and the first paragraphs), which
    bounds the cost of reranking 10 candidates on CPU. ``prior_weight`` > 0 adds that share of the
    retrieval prior (the normalised fusion score) to the model's 0-1 relevance.
    """

    prior_weight: float = 0.0
    max_chars: int | None = None  # passages are cut to this many characters before tokenising

    def __init__(self, model: str, device: str = "cpu", max_length: int = 256, prior_weight: float = 0.0) -> None:
        from sentence_transformers import CrossEncoder

        self.name = model
        self._model = CrossEncoder(model, device=device, max_length=max_length)
        self._lock = threading.Lock()
        self.prior_weight = prior_weight
        self.max_chars = 8 * max_length  # a token is rarely longer than 8 characters: no change to the result

    def _predict(self, pairs: list[tuple[str, str]], batch_size: int) -> list[float]:
        if self.max_chars:
            pairs = [(q, p[: self.max_chars]) for q, p in pairs]
        with self._lock:
            return [float(s) for s in self._model.predict(pairs, batch_size=batch_size)] if pairs else []

    def _combine(self, scores: list[float], prior: Sequence[float]) -> list[float]:
        if not self.prior_weight:
            return scores
        return [s + self.prior_weight * float(p) for s, p in zip(scores, prior, strict=True)]

    def score(self, question: str, passages: Sequence[str], prior: Sequence[float]) -> list[float]:
        """Score each (question, passage) pair with the cross-encoder (plus the weighted prior)."""
        return self._combine(self._predict([(question, p) for p in passages], 16), prior)

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str], Sequence[float]]]) -> list[list[float]]:
        """Score several questions' passages in one model call (micro-batching across requests)."""
        flat = self._predict([(q, p) for q, passages, _ in requests for p in passages], 32)
        out, i = [], 0
        for _, passages, prior in requests:
            out.append(self._combine(flat[i : i + len(passages)], prior))
            i += len(passages)
        return out


def make_reranker(
    provider: RerankerProvider, model: str, device: str = "cpu", max_length: int = 256, prior_weight: float = 0.0
) -> Reranker:
    """Build the reranker for ``provider``; raise ``ValueError`` listing the valid ones.

    The service passes ``RERANKER_MAX_LENGTH`` and ``RERANKER_PRIOR_WEIGHT`` (``reranker_kwargs``).
    """
    match provider:
        case "cross-encoder":
            logger.info("loading cross-encoder reranker %s (max %d tokens per pair)", model, max_length)
            return CrossEncoderReranker(model, device=device, max_length=max_length, prior_weight=prior_weight)
        case "lexical":
            return LexicalReranker()
        case "none":
            return PassThroughReranker()
        case _:
            raise ValueError(f"unknown reranker provider {provider!r}; valid: {', '.join(VALID_RERANKER_PROVIDERS)}")


def reranker_kwargs(settings: Settings) -> dict[str, Any]:
    """``make_reranker``'s arguments from the service settings (provider, model, device, length, prior)."""
    return {
        "provider": settings.reranker_provider,
        "model": settings.reranker_model,
        "device": settings.embedding_device,
        "max_length": settings.reranker_max_length,
        "prior_weight": settings.reranker_prior_weight,
    }
