"""The in-flight cap: on its own (cap 2, slow requests held open) and in the real app (503 still audited)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from api.inflight import InFlightCap
from core.load import in_flight
from core.resources import set_resources
from fakes import fake_resources

REJECTED = "shop_assistant_overload_rejections_total"
GAUGE = "shop_assistant_requests_in_flight"


@pytest.fixture(autouse=True)
def _no_leftover_slots():
    assert in_flight.count == 0
    yield
    assert in_flight.count == 0, "every slot must be given back"


def _app(release: asyncio.Event) -> InFlightCap:
    async def slow(request: Request) -> JSONResponse:
        await release.wait()
        return JSONResponse({"ok": True})

    async def stream(request: Request) -> StreamingResponse:
        async def body():
            yield b"first "
            await release.wait()
            yield b"last"

        return StreamingResponse(body(), media_type="text/plain")

    async def fast(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [
        Route("/rag/slow", slow, methods=["POST"]),
        Route("/rag/stream", stream, methods=["POST"]),
        Route("/v1/fast", fast, methods=["POST"]),
        Route("/rag/fast", fast, methods=["POST", "GET"]),
        Route("/other", fast, methods=["POST"]),
    ]
    return InFlightCap(Starlette(routes=routes), cap=2, prefixes=("/rag/", "/api/", "/v1/"))


async def test_third_request_gets_503_until_the_two_slow_ones_finish():
    release = asyncio.Event()
    rejected_before = REGISTRY.get_sample_value(REJECTED) or 0.0
    transport = httpx.ASGITransport(app=_app(release))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        held = [asyncio.create_task(client.post("/rag/slow")), asyncio.create_task(client.post("/rag/stream"))]
        for _ in range(200):
            if in_flight.count == 2:
                break
            await asyncio.sleep(0.01)
        assert in_flight.count == 2, "a slow request and an open stream each hold a slot"
        assert REGISTRY.get_sample_value(GAUGE) == 2

        third = await client.post("/rag/fast")
        assert third.status_code == 503
        assert third.headers["retry-after"] == "2"
        assert third.json() == {"error": "the assistant is busy, please try again in a moment", "retry_after_s": 2}
        openai_style = await client.post("/v1/fast")
        assert openai_style.status_code == 503 and openai_style.json()["error"]["code"] == "overloaded"
        assert REGISTRY.get_sample_value(REJECTED) == rejected_before + 2
        # Not counted: GETs and routes outside the question prefixes.
        assert (await client.get("/rag/fast")).status_code == 200
        assert (await client.post("/other")).status_code == 200

        release.set()
        done = await asyncio.gather(*held)
        assert [r.status_code for r in done] == [200, 200]
        assert done[1].text == "first last"
        assert in_flight.count == 0 and REGISTRY.get_sample_value(GAUGE) == 0
        assert (await client.post("/rag/fast")).status_code == 200


async def test_slot_is_given_back_when_the_app_fails():
    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError("bug")

    app = InFlightCap(Starlette(routes=[Route("/rag/boom", boom, methods=["POST"])]), cap=1, prefixes=("/rag/",))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/rag/boom")).status_code == 500
        assert (await client.post("/rag/boom")).status_code == 500, "not 503: the first slot was released"


def test_overload_503_in_the_real_app_is_audited(tmp_path, monkeypatch):
    monkeypatch.setenv("MAX_IN_FLIGHT", "1")
    from core.settings import get_settings

    get_settings.cache_clear()
    set_resources(fake_resources(tmp_path, "De afvalbak is 9 liter."))
    import server

    with TestClient(server.create_app()) as client:
        assert in_flight.try_enter(1)  # another request is being answered
        try:
            rag = client.post("/rag/invoke", json={"input": {"question": "Hoeveel liter is de afvalbak?"}})
            v1 = client.post(
                "/v1/chat/completions",
                json={"model": "kattenhuis-assistant", "messages": [{"role": "user", "content": "Hoeveel liter?"}]},
            )
            assert client.get("/health").status_code == 200
        finally:
            in_flight.leave()
        assert rag.status_code == 503 and rag.headers["retry-after"] == "2" and "busy" in rag.json()["error"]
        assert v1.status_code == 503 and v1.json()["error"]["type"] == "server_overloaded"
        ok = client.post("/rag/invoke", json={"input": {"question": "Hoeveel liter is de afvalbak?"}})
        assert ok.status_code == 200, ok.text
    lines = [json.loads(x) for x in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    refused = [x for x in lines if x["status"] == 503]
    assert [x["route"] for x in refused] == ["/rag/invoke", "/v1/chat/completions"]
    assert all(x["blocked_by"] == "overload" and x["rate_limit"]["verdict"] == "allow" for x in refused)
    assert lines[-1]["status"] == 200 and "blocked_by" not in lines[-1]
