"""ChromaDB access: one collection per catalogue, bound to the embedding model that filled it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from core.index_versions import (
    INDEX_LAYOUT,
    LAYOUT_KEY,
    IndexPointerError,
    active_name,
    lines_name,
    read_publish_status,
)
from core.metrics import INGEST_PUBLISH

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingModelMismatchError", "IndexLayoutError", "IndexNotReadyError", "IndexPointerError", "VectorStore"]

MODEL_KEY = "embedding_model"


class EmbeddingModelMismatchError(RuntimeError):
    """The collection was built with another embedding model than the configured one."""


class IndexNotReadyError(RuntimeError):
    """The collection is missing or empty: run the ingest first."""


class IndexLayoutError(IndexNotReadyError):
    """The collection was written in another storage layout than this code reads (``INDEX_LAYOUT``)."""


@dataclass(frozen=True, kw_only=True)
class Hit:
    """One retrieved chunk."""

    chunk_id: str
    doc_id: str
    title: str
    text: str
    score: float
    metadata: dict[str, Any]


def _hit(chunk_id: str, text: str | None, metadata: dict[str, Any] | None, score: float) -> Hit:
    """A ``Hit`` from one Chroma record."""
    meta = dict(metadata or {})
    title = str(meta.get("title", ""))
    return Hit(
        chunk_id=chunk_id, doc_id=str(meta.get("doc_id", "")), title=title, text=text or "", score=score, metadata=meta
    )


def open_client(path: Path, url: str | None = None) -> Any:
    """Chroma: a server at ``url`` when given (``CHROMA_URL``), else the embedded, persistent one at ``path``."""
    settings = ChromaSettings(anonymized_telemetry=False)
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"CHROMA_URL must look like http://host:port, not {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 8000)
        return chromadb.HttpClient(host=parts.hostname, port=port, ssl=parts.scheme == "https", settings=settings)
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


class VectorStore:
    """A Chroma collection that refuses vectors of another model than its own.

    Opened by its configured name, it follows the name's pointer to the active version
    (``core.index_versions``) and re-reads the pointer at most every ``refresh_s`` seconds in
    ``current()``, so a re-ingest reaches a running service without a restart. A pointer that cannot be
    followed (unreadable, naming no version or a missing one, or one this service cannot read) raises
    ``IndexPointerError`` from ``current()`` and ``count()`` until it can be followed again: the store never
    keeps serving another collection than the one the pointer names. A reader (not ``create``) also becomes
    the source of the index's publish status that ``/metrics`` exports (``core.metrics.INGEST_PUBLISH``).
    """

    def __init__(
        self, client: Any, collection: str, model_name: str, *, create: bool = False, refresh_s: float = 5.0
    ) -> None:
        self.model_name = model_name
        self.base = collection
        self._client, self._refresh_s = client, refresh_s
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._pointer_error: IndexPointerError | None = None
        self._col = self._open(collection, create) if create else self._follow(active_name(client, collection))
        if not create:
            INGEST_PUBLISH.watch(lambda: read_publish_status(client, collection))

    def _metadata(self) -> dict[str, Any]:
        return {MODEL_KEY: self.model_name, "hnsw:space": "cosine", LAYOUT_KEY: INDEX_LAYOUT}

    def _open(self, name: str, create: bool) -> Any:
        if create:
            col = self._client.get_or_create_collection(name, metadata=self._metadata())
        else:
            try:
                col = self._client.get_collection(name)
            except Exception as exc:  # chromadb raises NotFoundError / ValueError by version
                raise IndexNotReadyError(f"collection {name!r} does not exist; run `make ingest` first") from exc
        stored = (col.metadata or {}).get(MODEL_KEY)
        if stored != self.model_name:
            raise EmbeddingModelMismatchError(
                f"collection {name!r} was built with embedding model {stored!r}, "
                f"but the service is configured with {self.model_name!r}; re-ingest into a new "
                "collection (CHROMA_COLLECTION) or change EMBEDDING_MODEL back"
            )
        layout = (col.metadata or {}).get(LAYOUT_KEY, 1)
        if not create and layout != INDEX_LAYOUT:
            raise IndexLayoutError(
                f"index {name!r} was built with layout {layout}, this service needs layout {INDEX_LAYOUT} "
                "(chunks plus evidence lines): run `make ingest` (it rebuilds the index in the new layout)"
            )
        return col

    def _follow(self, target: str) -> Any:
        """Open the pointer's ``target``; a version the pointer names that does not exist is a pointer error."""
        try:
            return self._open(target, create=False)
        except IndexLayoutError:  # an older layout: its own message (and the ingest rebuilds it)
            raise
        except IndexNotReadyError as exc:
            if target == self.base:  # no pointer and no index: run the ingest
                raise
            raise IndexPointerError(f"the index pointer of {self.base!r} names {target!r}, which is missing") from exc

    def lines_collection(self, collection: Any = None, *, create: bool = False) -> Any:
        """The evidence-lines collection of ``collection`` (default: the current version); ``create``: make it."""
        name = lines_name(str((collection if collection is not None else self._col).name))
        if create:
            return self._client.get_or_create_collection(name, metadata=self._metadata())
        try:
            return self._client.get_collection(name)
        except Exception as exc:  # chromadb raises NotFoundError / ValueError by version
            raise IndexNotReadyError(f"collection {name!r} does not exist; run `make ingest` first") from exc

    @property
    def collection(self) -> Any:
        """The underlying Chroma collection (for the ingest pipeline)."""
        return self._col

    @property
    def name(self) -> str:
        """Name of the collection (version) in use."""
        return str(self._col.name)

    def current(self) -> Any:
        """The active version, re-reading the pointer when ``refresh_s`` has passed; one per request."""
        with self._lock:
            if time.monotonic() - self._checked >= self._refresh_s:
                self._checked = time.monotonic()
                try:
                    target = active_name(self._client, self.base)
                    if target != self._col.name:
                        self._col = self._follow(target)
                        logger.info("switched to index version %s", target)
                    self._pointer_error = None
                except IndexPointerError as exc:  # an error until the pointer is repaired: no other collection
                    if self._pointer_error is None:
                        logger.error("index %s unavailable: %s", self.base, exc)
                    self._pointer_error = exc
                except Exception as exc:  # the store did not answer, or the new version cannot be read here
                    self._pointer_error = IndexPointerError(f"cannot follow the index pointer of {self.base!r}: {exc}")
                    logger.error("index %s unavailable: %s", self.base, self._pointer_error)
            if self._pointer_error is not None:  # a fresh exception per call: no traceback that grows
                raise IndexPointerError(str(self._pointer_error))
            return self._col

    def count(self) -> int:
        """Number of chunks in the active version (raises ``IndexPointerError`` while the pointer is broken)."""
        return int(self.current().count())

    def search(self, vector: np.ndarray, k: int, collection: Any = None) -> list[Hit]:
        """Return the ``k`` nearest chunks to ``vector`` by cosine similarity (in ``collection``, or the current)."""
        res = (collection if collection is not None else self._col).query(
            query_embeddings=[vector.tolist()], n_results=k, include=["documents", "metadatas", "distances"]
        )
        return [
            _hit(cid, doc, meta, 1.0 - float(dist))
            for cid, doc, meta, dist in zip(
                res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
            )
        ]

    def all_chunks(self, page: int = 1000, collection: Any = None) -> list[Hit]:
        """Every chunk with text and metadata (score 0), page by page (in ``collection``, or the current): for BM25."""
        col = collection if collection is not None else self._col
        hits: list[Hit] = []
        offset = 0
        while True:
            got = col.get(include=["documents", "metadatas"], limit=page, offset=offset)
            hits += [
                _hit(cid, doc, meta, 0.0)
                for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            ]
            if len(got["ids"]) < page:
                return hits
            offset += page

    def similarities(self, vector: np.ndarray, chunk_ids: list[str], collection: Any = None) -> dict[str, float]:
        """Cosine similarity of ``vector`` to the stored vectors of ``chunk_ids`` (ids that are gone are left out)."""
        got = (collection if collection is not None else self._col).get(ids=chunk_ids, include=["embeddings"])
        if not got["ids"]:
            return {}
        stored = np.asarray(got["embeddings"], dtype=np.float32)
        query = np.asarray(vector, dtype=np.float32)
        norms = np.linalg.norm(stored, axis=1) * (np.linalg.norm(query) or 1.0)
        sims = stored @ query / np.where(norms == 0, 1.0, norms)
        return {cid: float(s) for cid, s in zip(got["ids"], sims, strict=True)}
