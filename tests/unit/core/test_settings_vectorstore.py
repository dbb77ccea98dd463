"""Settings validation and the embedding-model guard of the vector store."""

from __future__ import annotations

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings
from pydantic import ValidationError

from core.settings import Settings
from core.vectorstore import EmbeddingModelMismatchError, IndexNotReadyError, VectorStore


def test_overlap_must_be_below_chunk_size():
    with pytest.raises(ValidationError, match="smaller than chunk_tokens"):
        Settings(chunk_tokens=100, chunk_overlap_tokens=100)


def test_settings_read_environment(monkeypatch):
    monkeypatch.setenv("LLM_MODEL", "qwen2.5-3b")
    monkeypatch.setenv("RERANK_TOP_N", "3")
    s = Settings()
    assert s.llm_model == "qwen2.5-3b"
    assert s.rerank_top_n == 3


def test_collection_refuses_another_embedding_model(tmp_path):
    client = chromadb.PersistentClient(path=str(tmp_path), settings=ChromaSettings(anonymized_telemetry=False))
    VectorStore(client, "cat", "model-a", create=True)
    with pytest.raises(EmbeddingModelMismatchError, match="model-a"):
        VectorStore(client, "cat", "model-b")


def test_missing_collection_is_a_clear_error(tmp_path):
    client = chromadb.PersistentClient(path=str(tmp_path), settings=ChromaSettings(anonymized_telemetry=False))
    with pytest.raises(IndexNotReadyError, match="make ingest"):
        VectorStore(client, "nope", "model-a")
