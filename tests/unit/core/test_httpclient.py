"""LLM clients keep working when one event loop ends and another starts (tests, notebooks, scripts)."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import HumanMessage

from core.backends import make_backend_llm
from core.httpclient import LoopLocalTransport
from core.resources import make_llm
from core.settings import LLMBackend, Settings
from fakes_serving import standin_server


class _Pool:
    def __init__(self) -> None:
        self.requests = 0
        self.closed = False

    async def handle_async_request(self, request: object) -> object:
        self.requests += 1
        return request

    async def aclose(self) -> None:
        self.closed = True


def test_one_pool_per_event_loop_and_reused_within_a_loop():
    made: list[_Pool] = []

    def factory() -> _Pool:
        made.append(_Pool())
        return made[-1]

    transport = LoopLocalTransport(factory)

    async def two_requests() -> None:
        await transport.handle_async_request("a")
        await transport.handle_async_request("b")

    asyncio.run(two_requests())
    asyncio.run(two_requests())
    assert [p.requests for p in made] == [2, 2], "each loop gets its own pool, reused for its requests"

    async def close() -> None:
        await transport.handle_async_request("c")
        await transport.aclose()

    asyncio.run(close())
    assert made[-1].closed and made[-1].requests == 1


@pytest.fixture(scope="module")
def standin():
    with standin_server("--first-token-ms", "5", "--tokens-per-s", "2000") as base:
        yield base


async def _ask(llm) -> str:  # type: ignore[no-untyped-def]
    return str((await llm.ainvoke([HumanMessage("Wat kost verzending?")])).content)


def test_openai_client_answers_in_a_second_event_loop(standin):
    # Regression: LangChain's shared default pool handed the second loop a keep-alive connection of the first
    # (ended) loop: "RuntimeError: Event loop is closed" before the first token, a lost request behind the router.
    llm = make_llm(Settings(llm_base_url=standin, llm_model="standin", llm_max_tokens=8, llm_max_retries=0))
    assert asyncio.run(_ask(llm)).strip()
    assert asyncio.run(_ask(llm)).strip()


def test_backend_clients_answer_in_a_second_event_loop(standin):
    spec = LLMBackend(name="new", base_url=standin, model="standin", timeout_s=10)
    llm = make_backend_llm(spec, Settings(llm_max_tokens=8, llm_max_retries=0))
    for _ in range(3):
        assert asyncio.run(_ask(llm)).strip()
