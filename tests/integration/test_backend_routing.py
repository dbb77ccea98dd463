"""Routing between two real local engines (issue #6): the old backend speaks Ollama's native API, the new is vLLM.

The "old" backend is llama.cpp (``xllamacpp``, the engine family Ollama runs on) behind the Ollama
protocol shim (``deploy/llm/ollama_shim.py``), used through the ``ollama`` backend kind; the "new"
one is the vLLM CPU server through the ``openai`` kind. Engines are started with ``llmctl.sh`` on
``VLLM_PORT`` / ``LLAMACPP_PORT`` unless already up (and stopped again afterwards).

* ``ROUTING_CONVERSATIONS`` (default 200) conversations at a 50% canary: every one answered, each on
  the backend its thread id hashes to (a second turn stays there), the split within ±10 points.
* Killing the old backend mid-run: no conversation that had not started streaming is lost (it is
  retried on vLLM); those that were streaming end in an ``openai.APIError``, which the API turns
  into a clean error event.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from chains.context import format_context
from chains.prompts import USER_TEMPLATE_NL, system_prompt
from core import requestctx
from core.backends import build_backends
from core.router import Router
from core.routing import RoutedChatModel
from core.settings import LLMBackend, Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SERVED_NAME = os.environ.get("LLM_SERVED_NAME", "gemma3-270m")
VLLM = f"http://127.0.0.1:{os.environ.get('VLLM_PORT', '8001')}"
LLAMACPP = f"http://127.0.0.1:{os.environ.get('LLAMACPP_PORT', '8002')}"
CONVERSATIONS = int(os.environ.get("ROUTING_CONVERSATIONS", "200"))
DOC = {
    "doc_id": "faq-retour",
    "title": "Retourneren",
    "text": "Je hebt 30 dagen bedenktijd. Binnen 30 dagen na ontvangst kun je een product kosteloos retourneren.",
}
QUESTIONS = [
    "Hoe lang heb ik om een product te retourneren?",
    "Kan ik kosteloos retourneren?",
    "Hoeveel dagen bedenktijd?",
]


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def engines() -> Iterator[None]:
    """llama.cpp and vLLM, started here unless already running."""
    started = []
    for engine, url in (("llamacpp", LLAMACPP), ("vllm", VLLM)):
        if not _up(url + "/v1/models"):
            res = subprocess.run(
                ["bash", "deploy/llm/llmctl.sh", "start", engine], cwd=ROOT, capture_output=True, text=True, timeout=600
            )
            assert res.returncode == 0, f"llmctl start {engine} failed:\n{res.stdout}\n{res.stderr}"
            started.append(engine)
    yield
    for engine in started:
        subprocess.run(["bash", "deploy/llm/llmctl.sh", "stop", engine], cwd=ROOT, capture_output=True, timeout=120)


def _start_shim() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    args = [sys.executable, "deploy/llm/ollama_shim.py", "--port", str(port), "--upstream", LLAMACPP + "/v1"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not _up(base + "/api/tags"):
        assert time.monotonic() < deadline and proc.poll() is None, "the Ollama shim did not start"
        time.sleep(0.2)
    return proc, base


def _router(shim: str, canary_weight: float, max_tokens: int) -> Router:
    specs = [
        LLMBackend(name="ollama", kind="ollama", base_url=shim, model=SERVED_NAME, role="primary", timeout_s=120),
        LLMBackend(name="vllm", base_url=VLLM + "/v1", model=SERVED_NAME, timeout_s=120),
    ]
    # LLM_MAX_RETRIES stays at its default (1): the OpenAI client retries a pooled keep-alive connection that the
    # engine closed meanwhile (llama.cpp does) itself; the router's failover is for a backend that is down.
    settings = Settings(llm_backends=specs, llm_max_tokens=max_tokens, llm_timeout_s=120)
    router = Router(build_backends(settings))
    router.set_weight("vllm", canary_weight)
    return router


def _messages(i: int) -> list[Any]:
    user = USER_TEMPLATE_NL.format(context=format_context([DOC]), question=QUESTIONS[i % len(QUESTIONS)])
    return [SystemMessage(system_prompt("nl", "KH-test")), HumanMessage(user)]


async def _turn(model: RoutedChatModel, thread: str, i: int) -> tuple[str, str]:
    record: dict[str, Any] = {}
    token = requestctx.begin(record)
    try:
        reply = await model.ainvoke(_messages(i), config={"configurable": {"thread_id": thread}})
    finally:
        requestctx.end(token)
    return record["backend"], str(reply.content)


async def test_split_and_stickiness_over_real_conversations(engines):
    proc, shim = _start_shim()
    try:
        router = _router(shim, 0.5, max_tokens=8)
        model = RoutedChatModel(router=router)
        gate = asyncio.Semaphore(4)

        async def one(i: int) -> tuple[str, str, str]:
            async with gate:
                backend, answer = await _turn(model, f"conversation-{i}", i)
                return f"conversation-{i}", backend, answer

        results = await asyncio.gather(*(one(i) for i in range(CONVERSATIONS)))
        assert all(answer.strip() for _, _, answer in results), "every conversation is answered"
        assert all(backend == router.pick(thread).name for thread, backend, _ in results)
        share = sum(backend == "vllm" for _, backend, _ in results) / len(results)
        print(f"{len(results)} conversations: {share:.1%} on vllm, {1 - share:.1%} on ollama (shim over llama.cpp)")
        assert abs(share - 0.5) <= 0.10
        for thread, backend, _ in results[:10]:  # a second turn stays on the conversation's backend
            assert (await _turn(model, thread, 1))[0] == backend
        assert sum(b.counters.failovers for b in router.backends) == 0
    finally:
        proc.kill()
        proc.wait()


async def test_killing_the_old_backend_mid_run_loses_no_unstarted_request(engines):
    proc, shim = _start_shim()
    router = _router(shim, 0.0, max_tokens=48)  # everything on the old backend until it dies
    model = RoutedChatModel(router=router)
    streaming = asyncio.Event()
    gate = asyncio.Semaphore(4)

    async def one(i: int) -> tuple[str, int, str]:
        async with gate:
            got = 0
            try:
                async for chunk in model.astream(_messages(i), config={"configurable": {"thread_id": f"kill-{i}"}}):
                    if chunk.content:
                        got += 1
                        streaming.set()
            except openai.APIError as exc:
                return ("error", got, f"{exc!r} from {exc.__cause__!r}")
            return ("ok", got, "")

    tasks = [asyncio.create_task(one(i)) for i in range(12)]
    await asyncio.wait_for(streaming.wait(), 120)
    proc.kill()  # the old backend's server dies while answers are streaming
    proc.wait()
    results = await asyncio.gather(*tasks)
    print("outcomes (status, chunks):", results)
    assert all(got > 0 for status, got, _ in results if status == "error"), "only streams already under way may fail"
    assert any(status == "error" for status, _, _ in results), "the kill hit at least one stream in flight"
    assert router.by_name["vllm"].counters.requests > 0 and router.by_name["ollama"].counters.failovers > 0
    assert sum(status == "ok" for status, _, _ in results) >= len(results) - 4  # at most the 4 in flight
