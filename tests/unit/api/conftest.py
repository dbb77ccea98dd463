"""Fixtures of the API tests: the app with a scripted LLM, its lifespan running."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.resources import set_resources
from core.settings import get_settings
from fakes import fake_resources


@pytest.fixture
def make_client(tmp_path, monkeypatch):
    """``make_client(*answers)``: the app over the test catalogue (or ``docs``) with a scripted LLM, running its
    lifespan."""
    monkeypatch.setenv("THREAD_HMAC_KEY", "unit-test-thread-key-0123456789")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "1000")
    get_settings.cache_clear()
    stack = contextlib.ExitStack()

    def make(*answers: str, llm: Any = None, docs: dict[str, str] | None = None) -> TestClient:
        res = fake_resources(tmp_path, *answers, docs=docs)
        if llm is not None:
            res.llm = llm
        set_resources(res)
        import server

        client = stack.enter_context(TestClient(server.create_app()))
        client.resources = res  # type: ignore[attr-defined]
        return client

    yield make
    stack.close()
