"""The stand-in LLM server (benchmark fixture) over real HTTP: API shape, timing, determinism, concurrency."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from core.resources import make_llm
from core.settings import Settings
from fakes_serving import standin_server

FIRST_TOKEN_S = 0.05
RATE = 100.0
MODEL = "standin-test"


@pytest.fixture(scope="module")
def standin():
    with standin_server("--first-token-ms", "50", "--tokens-per-s", "100", "--served-model-name", MODEL) as base:
        yield base


def body(question: str, max_tokens: int, stream: bool, **extra) -> dict:
    messages = [{"role": "system", "content": "Je bent een assistent."}, {"role": "user", "content": question}]
    return {"model": MODEL, "messages": messages, "max_tokens": max_tokens, "stream": stream, **extra}


def test_models_lists_the_served_name(standin):
    data = httpx.get(standin + "/models").json()
    assert [m["id"] for m in data["data"]] == [MODEL]


def test_non_stream_is_deterministic_with_fixed_length_and_delay(standin):
    t0 = time.perf_counter()
    first = httpx.post(standin + "/chat/completions", json=body("Wat kost verzending?", 16, False)).json()
    elapsed = time.perf_counter() - t0
    again = httpx.post(standin + "/chat/completions", json=body("Wat kost verzending?", 16, False)).json()
    other = httpx.post(standin + "/chat/completions", json=body("Hoeveel liter?", 16, False)).json()
    text = first["choices"][0]["message"]["content"]
    assert len(text.split()) == 16
    assert text == again["choices"][0]["message"]["content"] != other["choices"][0]["message"]["content"]
    assert first["usage"]["completion_tokens"] == 16 and first["choices"][0]["finish_reason"] == "length"
    assert elapsed >= FIRST_TOKEN_S + 15 / RATE


def read_stream(base: str, payload: dict) -> tuple[float, float, list[dict], str]:
    t0 = time.perf_counter()
    first = None
    chunks, last = [], ""
    with httpx.stream("POST", base + "/chat/completions", json=payload, timeout=30) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            last = line[6:]
            if last == "[DONE]":
                break
            chunk = json.loads(last)
            chunks.append(chunk)
            if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - t0
    assert first is not None
    return first, time.perf_counter() - t0, chunks, last


def test_stream_keeps_first_token_delay_and_token_rate(standin):
    payload = body("Wat kost verzending?", 20, True, stream_options={"include_usage": True})
    ttft, total, chunks, last = read_stream(standin, payload)
    assert last == "[DONE]"
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert len([c for c in contents if c]) == 20
    assert chunks[-1]["usage"]["completion_tokens"] == 20
    assert FIRST_TOKEN_S <= ttft < FIRST_TOKEN_S + 0.5
    assert total >= FIRST_TOKEN_S + 19 / RATE
    non_stream = httpx.post(standin + "/chat/completions", json=body("Wat kost verzending?", 20, False)).json()
    assert "".join(c for c in contents if c) == non_stream["choices"][0]["message"]["content"]


def test_errors_are_openai_shaped(standin):
    wrong = httpx.post(standin + "/chat/completions", json={**body("x", 4, False), "model": "gpt-4"})
    assert wrong.status_code == 404 and "does not exist" in wrong.json()["error"]["message"]
    bad = httpx.post(standin + "/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    empty = httpx.post(standin + "/chat/completions", json={"model": MODEL, "messages": []})
    assert empty.status_code == 400


async def test_hundreds_of_concurrent_streams_run_in_parallel(standin):
    n, tokens = 200, 20
    single = FIRST_TOKEN_S + (tokens - 1) / RATE  # 0.24 s per stream without contention
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> int:
            async with client.stream("POST", standin + "/chat/completions", json=body(f"vraag {i}", tokens, True)) as r:
                lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
            assert lines[-1] == "data: [DONE]"
            return len(lines) - 2  # content chunks (minus the finish chunk and [DONE])

        t0 = time.perf_counter()
        counts = await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
    assert counts == [tokens] * n
    assert wall < 20 * single  # serialised streams would take n * single = 48 s


async def test_the_service_llm_client_streams_from_it(standin):
    llm = make_llm(Settings(llm_base_url=standin, llm_model=MODEL, llm_max_tokens=8, llm_stop=[]))
    pieces = [str(c.content) async for c in llm.astream([("user", "Hoeveel liter is de afvalbak?")])]
    message = await llm.ainvoke([("user", "Hoeveel liter is de afvalbak?")])
    assert len([p for p in pieces if p]) == 8
    assert "".join(pieces) == message.content
    assert message.usage_metadata["output_tokens"] == 8


def test_bench_service_direct_path_measures_the_llm_server(standin, monkeypatch, tmp_path):
    from core.settings import get_settings
    from evals import bench_service

    for key, value in {"LLM_BASE_URL": standin, "LLM_MODEL": MODEL, "LLM_MAX_TOKENS": "12", "LLM_STOP": "[]"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    with httpx.Client(timeout=30) as client:
        first, total, chunks = bench_service.direct(client, [{"role": "user", "content": "Wat kost verzending?"}])
    assert chunks == 12
    assert FIRST_TOKEN_S <= first < total and total >= FIRST_TOKEN_S + 11 / RATE
    audit = tmp_path / "audit.jsonl"
    audit.write_text(json.dumps({"request_id": "abc", "nodes_ms": {"guard": 12.5, "generate": 300.0}}) + "\n")
    assert bench_service.audit_nodes(audit, "abc") == {"guard": 12.5, "generate": 300.0}
    with pytest.raises(RuntimeError, match="no audit line"):
        bench_service.audit_nodes(audit, "missing", wait_s=0.2)
