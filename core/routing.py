"""A chat model over several backends (issue #6): sticky weighted choice, one failover before the first token.

``core.resources`` installs a ``RoutedChatModel`` as ``Resources.llm`` when ``LLM_BACKENDS`` lists
more than one backend. Each call picks its backend with ``Router.pick`` from the conversation's
thread id (else the request id) and records the name in the request's audit record (``backend``).
A call that fails before its first token (connection refused, 5xx or 429, no token within the
backend's ``timeout_s``) is retried once on the other backend (``backend_failover`` in the audit
record); an error after the first token is raised as an ``openai.APIError``, which every API route
turns into a clean error event or 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LanguageModelInput
from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config
from pydantic import ConfigDict

from core import requestctx
from core.backend_io import (
    as_api_error,
    backend_astream,
    backend_stream,
    close_quietly,
    has_token,
    is_backend_fault,
    until_token,
)
from core.backends import Backend, backend_specs, build_backends, make_backend_llm
from core.rollback import Thresholds
from core.router import Router
from core.settings import Settings

logger = logging.getLogger(__name__)

ROUTING_KEY = "routing_key"  # the keyword argument that carries the conversation key to _astream/_stream


def routing_key(config: RunnableConfig | None = None) -> str:
    """The conversation's thread id, else the request id, else a random key (one-off call).

    ``config`` is the caller's; a graph node's own config (LangGraph sets it for the node) fills the gaps.
    """
    config = ensure_config(config)
    thread = (config.get("configurable") or {}).get("thread_id")
    if thread:
        return str(thread)
    record = requestctx.current() or {}
    request_id = (config.get("metadata") or {}).get("request_id") or record.get("request_id")
    return str(request_id) if request_id else uuid.uuid4().hex


class RoutedChatModel(BaseChatModel):
    """Delegates each call to the backend the router picks for the conversation."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    router: Router
    annotates_backend: ClassVar[bool] = True  # graph.nodes.generate leaves the ``backend`` field to this model

    @property
    def _llm_type(self) -> str:
        return "routed"

    @property
    def model_name(self) -> str:
        """The primary's name (callers that label by model name)."""
        return self.router.primary.name

    # The public entry points hand the conversation's key down to _astream/_stream as a keyword argument
    # (LangChain passes kwargs to them, not the config).
    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Answer on the conversation's backend."""
        return super().invoke(input, config, stop=stop, **{ROUTING_KEY: routing_key(config), **kwargs})

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Answer on the conversation's backend."""
        return await super().ainvoke(input, config, stop=stop, **{ROUTING_KEY: routing_key(config), **kwargs})

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """Stream from the conversation's backend."""
        yield from super().stream(input, config, stop=stop, **{ROUTING_KEY: routing_key(config), **kwargs})

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """Stream from the conversation's backend."""
        async for chunk in super().astream(input, config, stop=stop, **{ROUTING_KEY: routing_key(config), **kwargs}):
            yield chunk

    def _attempts(self, kwargs: dict[str, Any]) -> list[Backend]:
        first = self.router.pick(str(kwargs.pop(ROUTING_KEY, None) or routing_key()))
        second = self.router.fallback_for(first)
        return [first] if second is None else [first, second]

    def _failed(self, backend: Backend, exc: Exception, t0: float, *, retry: Backend | None) -> None:
        fault = is_backend_fault(exc)
        backend.last_error = type(exc).__name__
        self.router.record(backend, ok=False, seconds=time.perf_counter() - t0, ttft_s=None, fault=fault)
        if retry is not None and fault:
            self.router.count_outcome(backend, "failover")
            requestctx.annotate(backend=retry.name, backend_failover=backend.name)
            logger.warning("backend %s failed before the first token (%s: %.200s): retrying on %s",
                           backend.name, type(exc).__name__, exc, retry.name)  # fmt: skip
        else:
            self.router.count_outcome(backend, "error")
            logger.warning("backend %s failed (%s: %.200s)", backend.name, type(exc).__name__, exc)

    def _succeeded(self, backend: Backend, t0: float, ttft: float | None) -> None:
        self.router.record(backend, ok=True, seconds=time.perf_counter() - t0, ttft_s=ttft, fault=False)
        self.router.count_outcome(backend, "ok")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Through the stream: the same failover rule, and clients built with streaming=True (ChatOpenAI here)
        # only answer through their stream.
        return await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        kwargs = dict(kwargs)
        attempts = self._attempts(kwargs)
        for i, backend in enumerate(attempts):
            retry = attempts[i + 1] if i + 1 < len(attempts) else None
            requestctx.annotate(backend=backend.name)
            llm, kw = backend.client(kwargs)
            t0 = time.perf_counter()
            # No run manager for the backend: this model reports the tokens, once, to the callbacks.
            stream = aiter(backend_astream(llm, messages, backend.stop(stop), kw))
            held: list[ChatGenerationChunk] = []
            try:
                async with asyncio.timeout(backend.spec.timeout_s):  # until the first token only
                    async for chunk in until_token(stream):
                        held.append(chunk)
            except Exception as exc:
                await close_quietly(stream)
                self._failed(backend, exc, t0, retry=retry)
                if retry is None or not is_backend_fault(exc):
                    raise as_api_error(exc, backend) from exc
                continue
            ttft = time.perf_counter() - t0
            try:
                for chunk in held:
                    yield chunk
                async for chunk in stream:  # after the first token: no retry, the error goes to the caller
                    yield chunk
            except GeneratorExit:  # the caller stopped reading (a run-on answer cut short): the backend did fine
                self._succeeded(backend, t0, ttft)
                raise
            except Exception as exc:
                self._failed(backend, exc, t0, retry=None)
                raise as_api_error(exc, backend) from exc
            finally:
                await close_quietly(stream)
            self._succeeded(backend, t0, ttft)
            return

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        kwargs = dict(kwargs)
        attempts = self._attempts(kwargs)
        for i, backend in enumerate(attempts):
            retry = attempts[i + 1] if i + 1 < len(attempts) else None
            requestctx.annotate(backend=backend.name)
            llm, kw = backend.client(kwargs)
            t0 = time.perf_counter()
            stream = iter(backend_stream(llm, messages, backend.stop(stop), kw))
            held: list[ChatGenerationChunk] = []
            try:
                for chunk in stream:
                    held.append(chunk)
                    if has_token(chunk):
                        break
            except Exception as exc:
                self._failed(backend, exc, t0, retry=retry)
                if retry is None or not is_backend_fault(exc):
                    raise as_api_error(exc, backend) from exc
                continue
            ttft = time.perf_counter() - t0
            try:
                yield from held
                yield from stream
            except GeneratorExit:
                self._succeeded(backend, t0, ttft)
                raise
            except Exception as exc:
                self._failed(backend, exc, t0, retry=None)
                raise as_api_error(exc, backend) from exc
            self._succeeded(backend, t0, ttft)
            return


def make_chat_model(settings: Settings) -> BaseChatModel:
    """``Resources.llm``: the one backend's client, or a ``RoutedChatModel`` over several backends."""
    specs = backend_specs(settings)
    if len(specs) == 1:
        return make_backend_llm(specs[0], settings)
    router = Router(build_backends(settings), Thresholds.from_settings(settings))
    logger.info("LLM routing over %s (primary %s)", ", ".join(s.name for s in specs), router.primary.name)
    return RoutedChatModel(router=router)
