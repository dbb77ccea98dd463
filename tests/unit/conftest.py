"""Fixtures of the index tests (ingest, index versions): a fresh in-memory Chroma client and a unique index name."""

from __future__ import annotations

import uuid

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings


@pytest.fixture
def client():
    return chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True))


@pytest.fixture
def base() -> str:
    return f"cat-{uuid.uuid4().hex[:8]}"
