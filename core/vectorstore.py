"""ChromaDB access: one collection per catalogue, bound to the embedding model that filled it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

logger = logging.getLogger(__name__)

MODEL_KEY = "embedding_model"


class EmbeddingModelMismatchError(RuntimeError):
    """The collection was built with another embedding model than the configured one."""


class IndexNotReadyError(RuntimeError):
    """The collection is missing or empty: run the ingest first."""


@dataclass(frozen=True, kw_only=True)
class Hit:
    """One retrieved chunk."""

    chunk_id: str
    doc_id: str
    title: str
    text: str
    score: float
    metadata: dict[str, Any]


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
    """A Chroma collection that refuses vectors of another model than its own."""

    def __init__(self, client: Any, collection: str, model_name: str, *, create: bool = False) -> None:
        self.model_name = model_name
        if create:
            self._col = client.get_or_create_collection(
                collection, metadata={MODEL_KEY: model_name, "hnsw:space": "cosine"}
            )
        else:
            try:
                self._col = client.get_collection(collection)
            except Exception as exc:  # chromadb raises NotFoundError / ValueError by version
                raise IndexNotReadyError(f"collection {collection!r} does not exist; run `make ingest` first") from exc
        stored = (self._col.metadata or {}).get(MODEL_KEY)
        if stored != model_name:
            raise EmbeddingModelMismatchError(
                f"collection {collection!r} was built with embedding model {stored!r}, "
                f"but the service is configured with {model_name!r}; re-ingest into a new "
                "collection (CHROMA_COLLECTION) or change EMBEDDING_MODEL back"
            )

    @property
    def collection(self) -> Any:
        """The underlying Chroma collection (for the ingest pipeline)."""
        return self._col

    def count(self) -> int:
        """Number of chunks in the collection."""
        return int(self._col.count())

    def search(self, vector: np.ndarray, k: int) -> list[Hit]:
        """Return the ``k`` nearest chunks to ``vector`` by cosine similarity."""
        res = self._col.query(
            query_embeddings=[vector.tolist()], n_results=k, include=["documents", "metadatas", "distances"]
        )
        hits: list[Hit] = []
        for cid, doc, meta, dist in zip(
            res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
        ):
            meta = dict(meta or {})
            hits.append(
                Hit(
                    chunk_id=cid,
                    doc_id=str(meta.get("doc_id", "")),
                    title=str(meta.get("title", "")),
                    text=doc or "",
                    score=1.0 - float(dist),
                    metadata=meta,
                )
            )
        return hits
