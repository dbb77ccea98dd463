"""How the router talks to one backend (issue #6): its stream, the first token, and which errors fail over.

Backends are called through their private ``_astream``/``_stream`` without a run manager, so that the
routed model reports each token once to LangChain's callbacks (LangGraph's ``messages`` stream).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from core.backends import Backend

logger = logging.getLogger(__name__)


def is_backend_fault(exc: BaseException) -> bool:
    """Connection errors, timeouts, 5xx and 429: another backend may well answer."""
    if isinstance(exc, openai.APIConnectionError | TimeoutError | ConnectionError):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status >= 500 or status == 429
    import httpx

    return isinstance(exc, httpx.TransportError)


def as_api_error(exc: Exception, backend: Backend) -> Exception:
    """Errors of non-OpenAI clients (Ollama, timeouts) as ``openai.APIError``, which the API handles cleanly."""
    if isinstance(exc, openai.APIError):
        return exc
    import httpx2  # the HTTP package of the openai client

    request = httpx2.Request("POST", backend.spec.base_url)
    if isinstance(exc, TimeoutError):
        return openai.APITimeoutError(request=request)
    return openai.APIConnectionError(message=f"backend {backend.name} failed: {type(exc).__name__}", request=request)


def has_token(chunk: ChatGenerationChunk) -> bool:
    """Whether a chunk carries answer text (or a tool call): the first such chunk is the first token."""
    message: Any = chunk.message
    return bool(chunk.text or message.content or getattr(message, "tool_call_chunks", None))


def _streams(llm: BaseChatModel) -> bool:
    """Whether the client implements streaming (ChatOpenAI, ChatOllama and the fakes do)."""
    cls = type(llm)
    return cls._stream is not BaseChatModel._stream or cls._astream is not BaseChatModel._astream


def _as_chunk(result: ChatResult) -> ChatGenerationChunk:
    message: Any = result.generations[0].message
    chunk = AIMessageChunk(
        content=message.content,
        usage_metadata=getattr(message, "usage_metadata", None),
        response_metadata=message.response_metadata,
    )
    return ChatGenerationChunk(message=chunk, generation_info=result.generations[0].generation_info)


async def backend_astream(
    llm: BaseChatModel, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
) -> AsyncIterator[ChatGenerationChunk]:
    """The backend's stream; one chunk with the whole answer from a client that cannot stream."""
    if _streams(llm):
        async for chunk in llm._astream(messages, stop=stop, **kwargs):
            yield chunk
    else:
        yield _as_chunk(await llm._agenerate(messages, stop=stop, **kwargs))


def backend_stream(
    llm: BaseChatModel, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
) -> Iterator[ChatGenerationChunk]:
    """Synchronous ``backend_astream``."""
    if _streams(llm):
        yield from llm._stream(messages, stop=stop, **kwargs)
    else:
        yield _as_chunk(llm._generate(messages, stop=stop, **kwargs))


async def until_token(stream: AsyncIterator[ChatGenerationChunk]) -> AsyncIterator[ChatGenerationChunk]:
    """Chunks of ``stream`` up to and including the first one with text."""
    while True:
        try:
            chunk = await anext(stream)
        except StopAsyncIteration:
            return
        yield chunk
        if has_token(chunk):
            return


async def close_quietly(stream: AsyncIterator[ChatGenerationChunk]) -> None:
    """Close a backend stream; an error while closing must not hide the one that ended it."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # closing a failed stream must not hide the original error
            logger.debug("closing a backend stream failed", exc_info=True)
