"""Whole-request deadlines: a slow backend ends in a clean 503 or error chunk, never a hung connection.

``within_deadline`` bounds one awaitable; ``until_deadline`` bounds a whole stream, which it runs in
a task of its own (see there) and only awaits under the timeout, never around a ``yield`` (the
classic hazard of ``asyncio.timeout`` in async generators). A ``TimeoutError`` raised inside the run
(e.g. a bounded retrieval step) counts as the same failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, TypeVar

from core import requestctx

T = TypeVar("T")


class RequestTimeoutError(Exception):
    """The answer did not complete within ``REQUEST_TIMEOUT_S`` (or a bounded step timed out)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds


async def within_deadline(awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable``; cancel it and raise ``RequestTimeoutError`` after ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError as exc:
        raise RequestTimeoutError(seconds) from exc


async def until_deadline(stream: AsyncIterator[T], seconds: float) -> AsyncGenerator[T, None]:
    """Re-yield ``stream``, run in its own task; raise ``RequestTimeoutError`` once ``seconds`` have passed.

    The stream runs in a task of its own so that stopping is a plain asyncio cancellation: when the
    consumer is cancelled (a client disconnect under Starlette's anyio cancel scope), closed, or out of
    time, the task is cancelled and LangGraph cancels the running node, i.e. the LLM call. Inside an
    anyio cancel scope that re-cancels every await, LangGraph's own clean-up is cut short and the node
    task would run on (measured: the LLM kept streaming after the client left).
    """
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=1)

    async def pump() -> None:
        try:
            async for item in stream:
                await queue.put(("item", item))
        except Exception as exc:  # handed to the consumer; cancellation just ends the task
            await queue.put(("error", exc))
            return
        finally:
            # Cancelled while it waits on the full queue (the consumer stopped reading), the stream is left
            # suspended at a yield: close it now, which stops what it runs, instead of whenever it is collected.
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        await queue.put(("end", None))

    task = asyncio.create_task(pump(), name="answer-stream")
    requestctx.bind_task(task)  # stops with the request, even if this generator is closed only when collected
    deadline = asyncio.get_running_loop().time() + seconds
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    kind, value = await queue.get()
            except TimeoutError as exc:
                raise RequestTimeoutError(seconds) from exc
            if kind == "end":
                return
            if kind == "error":
                if isinstance(value, TimeoutError):
                    raise RequestTimeoutError(seconds) from value
                raise value
            yield value
    finally:
        task.cancel()
