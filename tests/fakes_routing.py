"""Scripted backends for the routing tests: a fake clock, answering and failing chat models, a router."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from core.backends import Backend, Breaker
from core.rollback import Thresholds
from core.router import Router
from core.settings import LLMBackend


class Clock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def answering(text: str) -> GenericFakeChatModel:
    """Answers ``text`` to every call, streamed word by word."""
    return GenericFakeChatModel(messages=itertools.repeat(AIMessage(text)))


class Scripted(BaseChatModel):
    """Streams ``words``; raises ``error`` after ``fail_after`` of them (0: before the first), or stalls."""

    words: list[str] = Field(default_factory=lambda: ["hallo", "wereld"])
    error: type[Exception] | None = None
    fail_after: int = 0
    stall_s: float = 0.0  # sleep this long before the first chunk
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.calls += 1
        if self.error is not None:
            raise self.error("scripted failure")
        return ChatResult(generations=[ChatGeneration(message=AIMessage(" ".join(self.words)))])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        self.calls += 1
        yield ChatGenerationChunk(message=AIMessageChunk(content=""))  # a role chunk: no token yet
        for i, word in enumerate(self.words):
            if self.error is not None and i == self.fail_after:
                raise self.error("scripted failure")
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
        if self.error is not None and self.fail_after >= len(self.words):
            raise self.error("scripted failure")

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kw: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.stall_s:
            await asyncio.sleep(self.stall_s)
        for chunk in self._stream(messages, stop, **kw):
            yield chunk
            await asyncio.sleep(0)


def backend(
    name: str, llm: BaseChatModel, *, weight: float, role: str = "fallback", clock: Clock | None = None, **spec: Any
) -> Backend:
    """A registered backend around ``llm`` (breaker: 3 failures, 10 s cool-down)."""
    spec = {"base_url": f"http://{name}.invalid/v1", "model": "m", **spec}
    s = LLMBackend(name=name, weight=weight, role=role, **spec)  # type: ignore[arg-type]
    return Backend(spec=s, llm=llm, breaker=Breaker(3, 10.0, clock or Clock()), weight=weight)


def two_backends(
    primary: BaseChatModel, canary: BaseChatModel, *, canary_weight: float = 0.1, clock: Clock | None = None, **t: Any
) -> Router:
    """A router over ``old`` (primary) and ``new`` (canary with ``canary_weight``)."""
    clock = clock or Clock()
    return Router(
        [
            backend("old", primary, weight=1 - canary_weight, role="primary", clock=clock),
            backend("new", canary, weight=canary_weight, clock=clock),
        ],
        Thresholds(**t),
        clock,
    )
