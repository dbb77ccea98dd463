"""Hybrid lexical retrieval: a BM25 index (``bm25s``) over every chunk of the Chroma collection.

Dense retrieval misses exact product codes (``KH-LB-1001``, ``FW-4``), brand names and numbers; BM25 finds
them, and ``core.fusion.reciprocal_rank_fusion`` fuses both rankings. The index is built at start-up from the
collection's documents and metadata (``core.resources.build_resources``). ``python -m ingest`` publishes a
re-ingest as a new collection version (``ingest.publish``); the ``retrieve`` node passes each request's version
to ``LexicalIndex.refresh``, which rebuilds the index once after a switch. (An in-place write into the same
collection, which the CLI no longer does, would reach BM25 only after a restart.)
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from chains.expansion import STOPWORDS
from core.vectorstore import Hit, VectorStore

logger = logging.getLogger(__name__)

# Metadata values that are indexed along with the chunk text: product codes and names often live only there.
INDEXED_FIELDS = ("title", "name", "brand", "sku", "category")
# A word, number or code: "kattenbak", "4,95", "9.5", "kh-lb-1001", "fw-4", "12x85g".
_TOKEN = re.compile(r"[0-9a-z]+(?:[-.,/'][0-9a-z]+)*")
_PARTS = re.compile(r"[0-9a-z]+")


def _fold(text: str) -> str:
    """Lower-case and strip accents: ``België`` → ``belgie`` (shoppers type either)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokenize(text: str) -> list[str]:
    """Terms for BM25: folded words without stop words; codes stay whole and also add their parts.

    ``"Past FW-4 op KH-LB-1001?"`` → ``["past", "fw-4", "fw", "4", "kh-lb-1001", "kh", "lb", "1001"]``.
    """
    terms: list[str] = []
    for token in _TOKEN.findall(_fold(text)):
        parts = _PARTS.findall(token)
        if len(parts) > 1:
            terms.append(token)
        terms.extend(p for p in parts if p not in STOPWORDS and (len(p) > 1 or p.isdigit()))
    return terms


def index_text(text: str, metadata: Mapping[str, Any]) -> str:
    """The text BM25 indexes for one chunk: the chunk plus those product fields (name, SKU…) it does not quote."""
    values = [str(metadata[f]) for f in INDEXED_FIELDS if metadata.get(f) not in (None, "")]
    fields = [v for v in dict.fromkeys(values) if v not in text]
    return "\n".join([*fields, text])


@dataclass(frozen=True)
class _Built:
    """One immutable BM25 snapshot: searches read it whole while a refresh builds the next."""

    chunks: list[Hit]
    bm25: Any
    source: str | None  # the Chroma collection (index version) it was built from


class LexicalIndex:
    """BM25 over the chunks of one collection version; safe to share between threads."""

    def __init__(self, chunks: Sequence[Hit], *, source: str | None = None, k1: float = 1.5, b: float = 0.75) -> None:
        self._k1, self._b = k1, b
        self._lock = threading.Lock()
        self._built = self._build(list(chunks), source)

    def _build(self, chunks: list[Hit], source: str | None) -> _Built:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # the package sets its own logger to DEBUG
        bm25 = bm25s.BM25(k1=self._k1, b=self._b)
        if chunks:
            bm25.index([tokenize(index_text(c.text, c.metadata)) for c in chunks], show_progress=False)
        return _Built(chunks, bm25, source)

    @classmethod
    def from_store(cls, store: VectorStore, collection: Any = None) -> LexicalIndex:
        """Index every chunk of ``collection`` (default: the store's current one)."""
        col = collection if collection is not None else store.collection
        index = cls(store.all_chunks(collection=col), source=getattr(col, "name", None))
        logger.info("BM25 index built over %d chunks of %s", len(index), index.source)
        return index

    @property
    def source(self) -> str | None:
        """Name of the collection (index version) this index was built from."""
        return self._built.source

    def refresh(self, store: VectorStore, collection: Any) -> bool:
        """Rebuild from ``collection`` if it is another version than the indexed one (blocking: call it in a thread).

        A re-ingest that switches the store to a new collection version reaches BM25 through this; without a
        caller, the index keeps the version it was built from until the API restarts.
        """
        name = getattr(collection, "name", None)
        if name is None or name == self._built.source:
            return False
        with self._lock:
            if name == self._built.source:
                return False
            self._built = self._build(store.all_chunks(collection=collection), name)
        logger.info("BM25 index rebuilt over %d chunks of %s", len(self), name)
        return True

    def __len__(self) -> int:
        return len(self._built.chunks)

    def search(self, query: str, k: int) -> list[Hit]:
        """Up to ``k`` chunks that share at least one term with ``query``, best BM25 score first."""
        built = self._built
        terms = tokenize(query)
        if not terms or not built.chunks:
            return []
        ids, scores = built.bm25.retrieve([terms], k=min(k, len(built.chunks)), show_progress=False)
        return [replace(built.chunks[int(i)], score=float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]

    def search_many(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """One ranking per distinct bag of terms: a keyword variant of the question adds no second BM25 list."""
        seen: set[frozenset[str]] = set()
        rankings: list[list[Hit]] = []
        for query in queries:
            key = frozenset(tokenize(query))
            if key and key not in seen:
                seen.add(key)
                rankings.append(self.search(query, k))
        return rankings


def with_dense_scores(
    rankings: Sequence[Sequence[Hit]],
    dense: Sequence[Sequence[Hit]],
    store: VectorStore,
    vector: np.ndarray,
    collection: Any = None,
) -> list[list[Hit]]:
    """The BM25 ``rankings`` (order kept) with each hit's cosine score in place of its BM25 score.

    BM25 scores live on another scale: compared with cosines they would decide the fusion's tie-breaks and
    the ``min_relevance`` filter. A chunk that dense retrieval also found keeps its best dense score; one that
    only BM25 found gets its similarity to ``vector`` (the question) from its stored embedding in ``collection``
    (default: the store's current one).
    """
    best: dict[str, float] = {}
    for ranking in dense:
        for hit in ranking:
            best[hit.chunk_id] = max(hit.score, best.get(hit.chunk_id, -1.0))
    missing = list(dict.fromkeys(h.chunk_id for r in rankings for h in r if h.chunk_id not in best))
    if missing:
        best.update(store.similarities(vector, missing, collection=collection))
    return [[replace(h, score=best.get(h.chunk_id, 0.0)) for h in ranking] for ranking in rankings]
