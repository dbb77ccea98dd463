"""HTTP connection pools that stay valid across event loops, for the LLM clients.

An ``httpx`` pool's connections belong to the event loop that opened them. LangChain's OpenAI client
shares one cached pool per (base URL, timeout) across the whole process, so after one event loop ends
(a test, a notebook's ``asyncio.run``, a script calling the graph twice) the next loop gets a pooled
connection of the dead loop and the request fails with ``RuntimeError: Event loop is closed`` before
its first token. Through the router that was a lost request: it looked like a failed backend.

``LoopLocalTransport`` keeps one pool per running event loop (dropped with the loop), and
``async_client_kwargs`` gives each LLM client its own such transport. The server runs one loop, so in
production this is one pool per backend, as before.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol


class _AsyncTransport(Protocol):
    async def handle_async_request(self, request: Any) -> Any: ...

    async def aclose(self) -> None: ...


class LoopLocalTransport:
    """An async ``httpx``/``httpx2`` transport with one inner connection pool per event loop.

    It duck-types the transport interface (``handle_async_request``, ``aclose``, ``async with``), so it
    fits both the ``httpx`` clients (Ollama) and ``httpx2`` ones (the OpenAI SDK).
    """

    def __init__(self, factory: Callable[[], _AsyncTransport]) -> None:
        self._factory = factory
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncTransport] = weakref.WeakKeyDictionary()

    def _pool(self) -> _AsyncTransport:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = self._factory()
        return pool

    @property
    def pools(self) -> int:
        """How many event loops hold a pool now (for tests and debugging)."""
        return len(self._pools)

    async def handle_async_request(self, request: Any) -> Any:
        """Send ``request`` over the running loop's pool."""
        return await self._pool().handle_async_request(request)

    async def aclose(self) -> None:
        """Close the running loop's pool; pools of other (ended) loops go with their loop."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()

    async def __aenter__(self) -> LoopLocalTransport:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def openai_async_client(timeout_s: float) -> Any:
    """An async client for ``ChatOpenAI(http_async_client=...)``: the SDK's defaults, one pool per loop."""
    import httpx2  # the OpenAI SDK's HTTP package
    import openai
    from openai._constants import DEFAULT_CONNECTION_LIMITS

    transport = LoopLocalTransport(lambda: httpx2.AsyncHTTPTransport(limits=DEFAULT_CONNECTION_LIMITS))
    return openai.DefaultAsyncHttpxClient(transport=transport, timeout=timeout_s)  # type: ignore[arg-type]  # duck-typed


def ollama_async_client_kwargs() -> dict[str, Any]:
    """``ChatOllama(async_client_kwargs=...)``: the ``httpx`` defaults, one pool per loop."""
    import httpx

    return {"transport": LoopLocalTransport(httpx.AsyncHTTPTransport)}
