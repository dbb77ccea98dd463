"""Per-node timing: the ``NODE_LATENCY`` histogram and ``nodes_ms`` in the request's audit line."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from core import requestctx
from core.metrics import NODE_LATENCY

F = TypeVar("F", bound=Callable[..., Awaitable[dict[str, Any]]])


def timed(fn: F) -> F:
    """Decorate an ``async def node(state, runtime)``; the node's name is the function's name."""
    name = fn.__name__

    @functools.wraps(fn)
    async def wrapper(state: Any, runtime: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return await fn(state, runtime)
        finally:
            seconds = time.perf_counter() - t0
            NODE_LATENCY.labels(node=name).observe(seconds)
            record = requestctx.current()
            if record is not None:
                nodes = record.setdefault("nodes_ms", {})
                nodes[name] = round(nodes.get(name, 0.0) + seconds * 1000, 1)

    return wrapper  # type: ignore[return-value]
