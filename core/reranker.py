"""Rerankers: re-score retrieved candidates for a question."""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from core.settings import RerankerProvider

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
    """A sentence-transformers ``CrossEncoder`` by model name or local path."""

    def __init__(self, model: str, device: str = "cpu", max_length: int = 256) -> None:
        from sentence_transformers import CrossEncoder

        self.name = model
        self._model = CrossEncoder(model, device=device, max_length=max_length)
        self._lock = threading.Lock()

    def score(self, question: str, passages: Sequence[str], prior: Sequence[float]) -> list[float]:
        """Score each (question, passage) pair with the cross-encoder."""
        with self._lock:
            scores = self._model.predict([(question, p) for p in passages], batch_size=16)
        return [float(s) for s in scores]

    def score_batch(self, requests: Sequence[tuple[str, Sequence[str], Sequence[float]]]) -> list[list[float]]:
        """Score several questions' passages in one model call (micro-batching across requests)."""
        pairs = [(q, p) for q, passages, _ in requests for p in passages]
        with self._lock:
            flat = [float(s) for s in self._model.predict(pairs, batch_size=32)] if pairs else []
        out, i = [], 0
        for _, passages, _ in requests:
            out.append(flat[i : i + len(passages)])
            i += len(passages)
        return out


def make_reranker(provider: RerankerProvider, model: str, device: str = "cpu") -> Reranker:
    """Build the reranker for ``provider``; raise ``ValueError`` listing the valid ones."""
    match provider:
        case "cross-encoder":
            logger.info("loading cross-encoder reranker %s", model)
            return CrossEncoderReranker(model, device=device)
        case "lexical":
            return LexicalReranker()
        case "none":
            return PassThroughReranker()
        case _:
            raise ValueError(f"unknown reranker provider {provider!r}; valid: {', '.join(VALID_RERANKER_PROVIDERS)}")
