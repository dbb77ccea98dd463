"""Browser-test fixtures: the real app with fake resources on a free port, and headless Debian Chromium.

The app runs in-process under uvicorn (scripted LLM that streams word by word with a delay, hashed
embedder, the small test catalogue), so the tests are fast and deterministic. Chromium comes from
Debian (``make browser-tools``); without it the tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGenerationChunk

from core.reranker import LexicalReranker
from core.resources import Resources, set_resources
from core.settings import get_settings
from fakes import CATALOGUE, HashEmbedder, ephemeral_store, fake_classifier, write_catalogue
from ingest.pipeline import ingest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class SlowScriptedModel(GenericFakeChatModel):
    """Replies with the scripted answers in order, streamed word by word, one chunk every ``delay_s``."""

    delay_s: float = 0.05

    async def _astream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._stream(messages, stop=stop, **kwargs):
            await asyncio.sleep(self.delay_s)
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(tmp_path, monkeypatch) -> Iterator[Callable[..., str]]:
    """``serve(*answers, docs=None, env=None, delay_s=0.05)``: start the app, return its base URL."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(
        *answers: str, docs: dict[str, str] | None = None, env: dict[str, str] | None = None, delay_s: float = 0.05
    ) -> str:
        monkeypatch.setenv("THREAD_HMAC_KEY", "browser-test-thread-key-0123456789")
        monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "1000")
        monkeypatch.delenv("REDIS_URL", raising=False)  # the in-process limiter: no state shared between tests
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        embedder = HashEmbedder()
        store = ephemeral_store(embedder)
        catalogue = write_catalogue(tmp_path / "catalogue", {**CATALOGUE, **(docs or {})})
        ingest(catalogue, store, embedder, chunk_tokens=200, overlap_tokens=20)
        llm = SlowScriptedModel(messages=iter([AIMessage(a) for a in answers]), delay_s=delay_s)
        set_resources(
            Resources(
                embedder=embedder,
                reranker=LexicalReranker(),
                store=store,
                llm=llm,
                classifier=fake_classifier(embedder),
            )
        )
        import server

        port = _free_port()
        config = uvicorn.Config(server.create_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        srv = uvicorn.Server(config)
        thread = threading.Thread(target=srv.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not srv.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        running.append((srv, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for srv, thread in running:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (its own browser download is not used)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: `make browser-tools` installs it")
        pytest.skip(f"{CHROMIUM} is missing: run `make browser-tools`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage); console errors are collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 760, "height": 760}, locale="nl-NL")
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors
    yield tab
    context.close()
