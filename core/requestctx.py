"""Per-request annotations that the audit middleware writes, filled in by graph nodes.

The middleware sets a fresh dict for each request; nodes call ``annotate`` (a no-op
outside a request, e.g. in notebooks or LangGraph Studio).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_RECORD: ContextVar[dict[str, Any] | None] = ContextVar("audit_record", default=None)


def begin(record: dict[str, Any]) -> object:
    """Install ``record`` for the current request; returns a token for ``end``."""
    return _RECORD.set(record)


def end(token: object) -> None:
    """Remove the current request's record."""
    _RECORD.reset(token)  # type: ignore[arg-type]


def annotate(**fields: Any) -> None:
    """Add fields to the current request's audit record, if there is one."""
    record = _RECORD.get()
    if record is not None:
        record.update(fields)


def current() -> dict[str, Any] | None:
    """The current request's audit record, if any."""
    return _RECORD.get()
