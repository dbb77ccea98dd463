"""Whole-request and retrieval timeouts: a slow backend ends in a clean 503 / error chunk, and the work stops."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from fastapi.testclient import TestClient

from api.timeouts import RequestTimeoutError, until_deadline, within_deadline
from core import requestctx
from core.resources import set_resources
from fakes import fake_resources
from fakes_serving import slow_llm

QUESTION = "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"


async def _slow_items(n: int, delay: float, log: list[str]):
    try:
        for i in range(n):
            await asyncio.sleep(delay)
            yield i
        log.append("finished")
    except asyncio.CancelledError:
        log.append("cancelled")
        raise


async def test_until_deadline_cancels_the_stream_and_raises():
    log: list[str] = []
    got = []
    t0 = time.perf_counter()
    with pytest.raises(RequestTimeoutError):
        async for item in until_deadline(_slow_items(100, 0.05, log), 0.3):
            got.append(item)
    assert time.perf_counter() - t0 < 1.0
    await asyncio.sleep(0.05)
    assert log == ["cancelled"] and 2 <= len(got) < 10


async def test_until_deadline_passes_items_and_errors_through():
    log: list[str] = []
    assert [i async for i in until_deadline(_slow_items(3, 0.0, log), 5)] == [0, 1, 2]
    assert log == ["finished"]

    async def failing():
        yield 1
        raise ValueError("backend said no")

    with pytest.raises(ValueError, match="backend said no"):
        [i async for i in until_deadline(failing(), 5)]

    async def inner_timeout():
        yield 1
        raise TimeoutError

    with pytest.raises(RequestTimeoutError):
        [i async for i in until_deadline(inner_timeout(), 5)]


async def test_closing_the_consumer_cancels_the_stream():
    log: list[str] = []
    stream = until_deadline(_slow_items(100, 0.05, log), 30)
    assert await anext(stream) == 0
    await stream.aclose()
    await asyncio.sleep(0.05)
    assert log == ["cancelled"]


async def test_closing_the_consumer_closes_a_stream_that_waits_on_a_full_queue():
    # The consumer stops reading (a client that left while its data was being sent): the stream runs ahead and
    # waits at a yield. Closing the consumer must close the stream at once; the reference held here means no
    # garbage collection can do it instead (CI, 2026-11-27: an LLM call ran on to its end after a disconnect).
    closed: list[str] = []

    async def items():
        try:
            for i in range(100):
                yield i
        finally:
            closed.append("closed")

    source = items()
    stream = until_deadline(source, 30)
    assert await anext(stream) == 0
    await asyncio.sleep(0.05)  # the stream fills the queue and waits
    await stream.aclose()
    await asyncio.sleep(0.05)
    assert closed == ["closed"]
    assert source.ag_frame is None  # finished, not suspended


async def test_ending_the_request_stops_its_stream_though_the_consumer_was_never_closed():
    # A client that leaves ends its request (the gate middleware calls requestctx.end) while the generators that
    # stream its answer may be closed only when collected: the stream bound to the request stops with it.
    log: list[str] = []
    token = requestctx.begin({})
    stream = until_deadline(_slow_items(100, 0.05, log), 30)
    assert await anext(stream) == 0
    requestctx.end(token)
    await asyncio.sleep(0.1)
    assert log == ["cancelled"]
    await stream.aclose()


async def test_within_deadline():
    assert await within_deadline(asyncio.sleep(0, result=7), 1) == 7
    with pytest.raises(RequestTimeoutError):
        await within_deadline(asyncio.sleep(5), 0.1)


@pytest.fixture
def slow_app(tmp_path, monkeypatch):
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "0.6")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "1000")
    from core.settings import get_settings

    get_settings.cache_clear()
    res = fake_resources(tmp_path)
    res.llm = slow_llm(delay=0.2, words=50)  # 10 s for a whole answer
    set_resources(res)
    import server

    with TestClient(server.create_app()) as client:
        yield client, res.llm


def test_slow_llm_gives_clean_503_on_invoke(slow_app):
    client, llm = slow_app
    t0 = time.perf_counter()
    r = client.post("/rag/invoke", json={"input": {"question": QUESTION}})
    elapsed = time.perf_counter() - t0
    assert r.status_code == 503 and r.headers["retry-after"]
    assert "temporarily unavailable" in r.json()["error"]
    assert elapsed < 3, f"took {elapsed:.1f} s"
    v1 = client.post(
        "/v1/chat/completions",
        json={"model": "kattenhuis-assistant", "messages": [{"role": "user", "content": QUESTION}]},
    )
    assert v1.status_code == 503 and v1.json()["error"]["type"] == "service_unavailable"
    assert llm.cancelled.wait(2) and not llm.finished.is_set()


def test_slow_llm_gives_error_chunk_on_streams(slow_app):
    client, llm = slow_app
    t0 = time.perf_counter()
    with client.stream("POST", "/rag/stream", json={"input": {"question": QUESTION}}) as r:
        body = "".join(r.iter_text())
    assert time.perf_counter() - t0 < 3
    assert "temporarily unavailable" in body and "event: end" in body
    body = {"model": "kattenhuis-assistant", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        data = [x[5:].strip() for x in "".join(r.iter_text()).splitlines() if x.startswith("data:")]
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["error"]["type"] == "service_unavailable"
    assert llm.cancelled.wait(2) and not llm.finished.is_set()


def test_stuck_retrieval_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRIEVAL_TIMEOUT_S", "0.2")
    from core.settings import get_settings

    get_settings.cache_clear()
    res = fake_resources(tmp_path, "nooit")
    search = res.store.search

    def stuck(*a, **k):
        time.sleep(1.0)
        return search(*a, **k)

    res.store.search = stuck  # type: ignore[method-assign]
    set_resources(res)
    import server

    with TestClient(server.create_app()) as client:
        t0 = time.perf_counter()
        r = client.post("/rag/invoke", json={"input": {"question": QUESTION}})
        assert time.perf_counter() - t0 < 0.9
    assert r.status_code == 503 and "temporarily unavailable" in r.json()["error"]


def test_a_generation_over_its_budget_ends_in_the_quote_not_a_503(tmp_path, monkeypatch):
    # GENERATE_TIMEOUT_S below REQUEST_TIMEOUT_S: a model too slow for its budget is stopped, and the shopper gets
    # the evidence quoted (or the sentences already checked) within the request's deadline.
    monkeypatch.setenv("GENERATE_TIMEOUT_S", "0.5")
    monkeypatch.setenv("REQUEST_TIMEOUT_S", "10")
    from core.settings import get_settings

    get_settings.cache_clear()
    res = fake_resources(tmp_path)
    res.llm = slow_llm(delay=0.2, words=50)  # 10 s for a whole answer
    set_resources(res)
    import server

    with TestClient(server.create_app()) as client:
        t0 = time.perf_counter()
        r = client.post("/rag/invoke", json={"input": {"question": QUESTION}})
        elapsed = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    out = r.json()["output"]  # two words in 0.5 s: no sentence finished, so the evidence is quoted
    assert out["mode"] == "extractive" and out["answer"].startswith("Volgens ") and out["sources"]
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert res.llm.cancelled.wait(2) and not res.llm.finished.is_set()
