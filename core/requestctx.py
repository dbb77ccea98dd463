"""Per-request annotations that the audit middleware writes, filled in by graph nodes.

The middleware sets a fresh dict for each request; nodes call ``annotate`` (a no-op
outside a request, e.g. in notebooks or LangGraph Studio). Work that a request starts in a task of its
own (the answer stream) is bound to the request with ``bind_task`` and cancelled when the request ends,
also when its client left before the end.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from typing import Any, cast

_RECORD: ContextVar[dict[str, Any] | None] = ContextVar("audit_record", default=None)
_TASKS: ContextVar[set[asyncio.Task[Any]] | None] = ContextVar("request_tasks", default=None)


def begin(record: dict[str, Any]) -> object:
    """Install ``record`` for the current request; returns a token for ``end``."""
    return _RECORD.set(record), _TASKS.set(set())


def end(token: object) -> None:
    """Remove the current request's record and cancel the tasks bound to it that are still running."""
    record_token, tasks_token = cast(tuple[Token[Any], Token[Any]], token)
    tasks = _TASKS.get() or set()
    _TASKS.reset(tasks_token)
    _RECORD.reset(record_token)
    for task in list(tasks):
        task.cancel()


def bind_task(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` when the current request ends, if it still runs then (no-op outside a request).

    A client that leaves ends its request at once, but the generators that stream its answer are closed only
    when they are collected; a task bound here stops with the request instead.
    """
    tasks = _TASKS.get()
    if tasks is not None:
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def annotate(**fields: Any) -> None:
    """Add fields to the current request's audit record, if there is one."""
    record = _RECORD.get()
    if record is not None:
        record.update(fields)


def current() -> dict[str, Any] | None:
    """The current request's audit record, if any."""
    return _RECORD.get()
