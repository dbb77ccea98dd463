"""The Ollama protocol shim, checked with the official ``ollama`` client, and the ``ollama`` backend kind over it.

Upstream is the stand-in OpenAI-compatible server (evals/standin_llm.py: deterministic words, one
word per token), so this runs without a real engine; tests/integration/test_backend_routing.py puts
the shim in front of the real llama.cpp engine.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest
from langchain_core.messages import HumanMessage

from core.backends import Backend, Breaker, make_backend_llm
from core.rollback import Thresholds
from core.router import Router
from core.routing import RoutedChatModel
from core.settings import LLMBackend, Settings

ROOT = Path(__file__).resolve().parents[3]
MODEL = "standin-shim"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(args: list[str], ready_url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{args} did not start: {proc.communicate()[0][-2000:]}")


@pytest.fixture(scope="module")
def shim() -> Iterator[str]:
    """The shim on a free port over a stand-in upstream; yields the shim's base URL."""
    up, port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up}/v1"
    standin = _serve(
        ["-m", "evals.standin_llm", "--port", str(up), "--first-token-ms", "20", "--served-model-name", MODEL],
        upstream + "/models",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        proc = _serve(["deploy/llm/ollama_shim.py", "--port", str(port), "--upstream", upstream], base + "/api/version")
        try:
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        standin.terminate()
        standin.wait(timeout=10)


def test_official_client_lists_chats_and_generates(shim):
    client = ollama.Client(host=shim)
    assert httpx.get(shim + "/api/version").json()["version"].endswith("-shim")
    assert [m.model for m in client.list().models] == [MODEL]
    reply = client.chat(
        model=MODEL, messages=[{"role": "user", "content": "Hoe groot is de afvalbak?"}], options={"num_predict": 5}
    )
    assert reply.done and reply.message.role == "assistant" and len(reply.message.content.split()) == 5
    parts = list(client.chat(model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True))
    assert parts[-1].done and parts[-1].done_reason == "stop" and not any(p.done for p in parts[:-1])
    assert "".join(p.message.content for p in parts).strip()
    gen = client.generate(model=MODEL, prompt="Hoe lang duurt de levering?", options={"num_predict": 3})
    assert gen.done and len(gen.response.split()) == 3


async def test_async_client_streams_generate(shim):
    client = ollama.AsyncClient(host=shim)
    parts = [p async for p in await client.generate(model=MODEL, prompt="x", stream=True, options={"num_predict": 4})]
    assert len("".join(p.response for p in parts).split()) == 4 and parts[-1].done


def test_upstream_down_is_a_response_error():
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    proc = _serve(
        ["deploy/llm/ollama_shim.py", "--port", str(port), "--upstream", dead], f"http://127.0.0.1:{port}/api/version"
    )
    try:
        with pytest.raises(ollama.ResponseError) as err:
            ollama.Client(host=f"http://127.0.0.1:{port}").chat(
                model=MODEL, messages=[{"role": "user", "content": "x"}]
            )
        assert err.value.status_code == 502
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_ollama_backend_kind_through_the_router_with_real_http_failover(shim):
    settings = Settings()
    dead = LLMBackend(name="vllm", base_url=f"http://127.0.0.1:{free_port()}/v1", model=MODEL, role="primary", weight=1)
    old = LLMBackend(name="ollama", kind="ollama", base_url=shim, model=MODEL, weight=0.0)
    backends = [
        Backend(spec=s, llm=make_backend_llm(s, settings), breaker=Breaker(3, 10.0), weight=s.weight)
        for s in (dead, old)
    ]
    model = RoutedChatModel(router=Router(backends, Thresholds()))
    chunks = [c.content async for c in model.bind(max_tokens=6).astream([HumanMessage("Wat kost verzending?")])]
    assert len("".join(map(str, chunks)).split()) == 6  # max_tokens became Ollama's num_predict
    assert backends[0].counters.failovers == 1 and backends[1].counters.requests == 1
    reply = await model.bind(max_tokens=2).ainvoke([HumanMessage("x")])
    assert len(str(reply.content).split()) == 2
