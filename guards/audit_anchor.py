"""Anchors of the audit chain: the head ``{segment, seq, mac}`` published outside the log file.

Every ``AUDIT_ANCHOR_EVERY_S`` (and at shutdown) ``anchoring`` publishes the head the background thread has
written to disk under ``audit-anchor:<segment>`` (one key per segment). With ``SHARED_STATE=redis`` that is
the shared store; with ``SHARED_STATE=local`` it is ``<stem>.anchors.jsonl`` beside the log (``FileAnchors``),
which protects less: whoever can edit the log can usually edit that file too. Anchoring runs off the request
path; an unreachable store costs a warning, never a request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from core.shared_state import STORE_TIMEOUT_S, Entry
from guards.audit import AuditLog, Head

logger = logging.getLogger(__name__)

ANCHOR_PREFIX = "audit-anchor:"


class AnchorStore(Protocol):
    """What anchoring needs of a store: ``SharedState``'s ``get`` and ``set``."""

    kind: str

    async def get(self, key: str) -> Entry | None:
        """The current value of ``key``."""
        ...

    async def set(self, key: str, value: dict[str, Any], by: str) -> Entry:
        """Write ``value`` under ``key``."""
        ...


def anchor_key(segment: str) -> str:
    """The store key of a segment's anchor."""
    return f"{ANCHOR_PREFIX}{segment}"


def anchors_file(log_path: Path) -> Path:
    """The local anchor file beside the log: ``audit.jsonl`` → ``audit.anchors.jsonl``."""
    return log_path.with_name(f"{log_path.stem}.anchors.jsonl")


class FileAnchors:
    """Anchors appended as JSON lines to a local file (``SHARED_STATE=local``); the last one per key counts."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode())  # one write on O_APPEND: processes sharing the file do not interleave
        finally:
            os.close(fd)

    def _read(self) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        if not self.path.exists():
            return out
        for n, raw in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                data = json.loads(raw)
                out[str(data["key"])] = Entry(dict(data["value"]), n, float(data["at"]), str(data["by"]))
            except (ValueError, KeyError, TypeError):
                logger.warning("%s:%d: unreadable anchor line", self.path, n)
        return out

    async def get(self, key: str) -> Entry | None:
        """The last anchor written under ``key``."""
        return (await asyncio.to_thread(self._read)).get(key)

    async def set(self, key: str, value: dict[str, Any], by: str) -> Entry:
        """Append ``value`` under ``key``."""
        at = time.time()
        line = json.dumps({"key": key, "value": value, "by": by, "at": at}, separators=(",", ":")) + "\n"
        await asyncio.to_thread(self._append, line)
        return Entry(dict(value), 0, at, by)


class AnchorFiles:
    """Several local anchor files read as one store by verify (the newest anchor of a key in any of them)."""

    kind = "file"

    def __init__(self, paths: list[Path]) -> None:
        self.stores = [FileAnchors(p) for p in paths]

    async def get(self, key: str) -> Entry | None:
        """The newest anchor of ``key`` in any of the files."""
        found = [e for s in self.stores if (e := await s.get(key)) is not None]
        return max(found, key=lambda e: e.updated_at) if found else None

    async def set(self, key: str, value: dict[str, Any], by: str) -> Entry:
        """Not for writing."""
        raise NotImplementedError("verify only reads anchors")


def anchor_store(shared: AnchorStore, log_path: Path) -> AnchorStore:
    """The shared store when it is shared (Redis); else the local anchor file beside ``log_path``."""
    return shared if shared.kind == "redis" else FileAnchors(anchors_file(log_path))


async def publish(audit: AuditLog, store: AnchorStore, last: Head | None, timeout_s: float) -> Head | None:
    """Publish the written head when it moved since ``last``; returns the head now anchored."""
    head = audit.head
    if head is None or head == last:
        return last
    value = {"segment": head.segment, "seq": head.seq, "mac": head.mac, "file": head.file}
    try:
        await asyncio.wait_for(store.set(anchor_key(head.segment), value, audit.run), timeout_s)
    except Exception as exc:  # the store is down: the next round tries again
        logger.warning("audit anchor not published (%s store: %s: %s)", store.kind, type(exc).__name__, exc)
        return last
    return head


@asynccontextmanager
async def anchoring(
    audit: AuditLog, store: AnchorStore, every_s: float, timeout_s: float = 2 * STORE_TIMEOUT_S
) -> AsyncIterator[None]:
    """Publish the head every ``every_s`` in a background task while the body runs, and once more at exit."""
    state: dict[str, Head | None] = {"last": None}

    async def loop() -> None:
        while True:
            await asyncio.sleep(every_s)
            state["last"] = await publish(audit, store, state["last"], timeout_s)

    task = asyncio.create_task(loop(), name="audit-anchor")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(audit.flush)  # the lines still queued, so the final anchor covers them
        await publish(audit, store, state["last"], timeout_s)
