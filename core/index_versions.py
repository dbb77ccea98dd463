"""Versioned collections: a re-ingest builds a new version and switches readers over in one step.

Chroma has no aliases, so the name a service is configured with (``CHROMA_COLLECTION``, say
``catalogue``) points at the active version through the metadata of a small pointer collection
``catalogue__active``. A versioned ingest copies the active version (vectors included, nothing is
embedded again), applies the changes to the copy, and only then moves the pointer. Readers hold
one version per request (``VectorStore.current``), so they see the old index or the new one, never
a mix of both. Without a pointer the configured name is used as it is (indexes built before this).
A pointer that exists but cannot be read, names no version, or names a version that is missing is an
error (``IndexPointerError``), never a fallback to the configured name: that collection may be a legacy
index with stale prices, and serving it silently is worse than answering 503 until the pointer is repaired.

Every version has a sibling collection ``<version>__lines`` with the evidence lines of its documents
(``ingest.lines``, ``core.evidence``); it is copied, switched and dropped together with its version. The
chunk collection records the storage layout it was written with (``index_layout``): the service reads only
the layout it knows (``INDEX_LAYOUT``), and a versioned ingest rebuilds an index of an older layout from scratch.

The outcome of the last publish attempt (published, or refused and why: ``ingest.safety``) is kept in the
metadata of a small status collection ``<base>__publish`` next to the pointer, so the service, which reads
the same index store, can export it on ``/metrics`` (``core.metrics.INGEST_PUBLISH``) for the alert.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from chromadb.errors import NotFoundError

from core.metrics import INGEST_REFUSAL_REASONS

logger = logging.getLogger(__name__)

POINTER_SUFFIX = "__active"
VERSION_MARK = "__v"
ACTIVE_KEY = "active"
LINES_SUFFIX = "__lines"
LAYOUT_KEY = "index_layout"  # collection metadata of a chunk collection: the layout it was written with
# 1: chunks only (no ``index_layout`` key); 2: chunks plus the ``<name>__lines`` collection of evidence lines.
INDEX_LAYOUT = 2
STATUS_SUFFIX = "__publish"
REFUSAL_REASONS = INGEST_REFUSAL_REASONS  # why a publish was refused (ingest.safety): fixed metric labels


class IndexPointerError(RuntimeError):
    """The pointer of a versioned index exists but cannot be followed: an error, never a fallback."""


def pointer_name(base: str) -> str:
    """Name of the pointer collection of ``base``."""
    return f"{base}{POINTER_SUFFIX}"


def lines_name(collection: str) -> str:
    """Name of the evidence-lines collection that belongs to the chunk collection ``collection``."""
    return f"{collection}{LINES_SUFFIX}"


def new_version_name(base: str, now: datetime | None = None) -> str:
    """A fresh, sortable version name: ``<base>__v<UTC time to the microsecond>``."""
    return f"{base}{VERSION_MARK}{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%S%f')}"


def _names(client: Any) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in client.list_collections()]


def _pointer_missing(client: Any, name: str, exc: Exception) -> bool:
    """Whether ``exc`` from reading the pointer ``name`` means it does not exist (and not that reading failed)."""
    if isinstance(exc, NotFoundError):
        return True
    try:  # other chromadb versions raise ValueError: ask the list, which fails too when the store is unreachable
        return name not in _names(client)
    except Exception as listing:
        raise IndexPointerError(f"cannot read the index pointer {name!r}: {exc}; listing failed: {listing}") from exc


def active_name(client: Any, base: str) -> str:
    """The collection readers of ``base`` should use now: the pointer's target, else (no pointer) ``base`` itself.

    Raises ``IndexPointerError`` when the pointer exists but cannot be read or names no version; whether its
    target exists is checked where it is opened (``core.vectorstore``).
    """
    name = pointer_name(base)
    try:
        pointer = client.get_collection(name)
    except Exception as exc:  # NotFoundError: no pointer, an unversioned (legacy) index
        if _pointer_missing(client, name, exc):
            return base
        raise IndexPointerError(f"cannot read the index pointer {name!r}: {exc}") from exc
    target = (pointer.metadata or {}).get(ACTIVE_KEY)
    if not isinstance(target, str) or not target:
        raise IndexPointerError(
            f"the index pointer {name!r} names no version (metadata {pointer.metadata!r}); "
            "run `python -m ingest --rebuild` to write a new version and repair it"
        )
    return target


def set_active(client: Any, base: str, name: str) -> None:
    """Point readers of ``base`` at ``name`` (one metadata write)."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    pointer = client.get_or_create_collection(pointer_name(base), metadata={ACTIVE_KEY: name, "switched": stamp})
    pointer.modify(metadata={ACTIVE_KEY: name, "switched": stamp})
    logger.info("index %s now points at %s", base, name)


def versions(client: Any, base: str) -> list[str]:
    """The versions of ``base``, oldest first."""
    prefix = f"{base}{VERSION_MARK}"
    return sorted(n for n in _names(client) if n.startswith(prefix) and not n.endswith(LINES_SUFFIX))


def drop_version(client: Any, name: str) -> None:
    """Delete the collection ``name`` and its lines collection (either may be missing)."""
    for target in (name, lines_name(name)):
        try:
            client.delete_collection(target)
        except Exception:  # NotFoundError / ValueError by chromadb version: nothing to drop
            logger.debug("no collection %s to drop", target)


def prune(client: Any, base: str, keep: int) -> list[str]:
    """Drop all but the ``keep`` newest versions (with their lines); never the active one. Returns the dropped names."""
    active = active_name(client, base)
    old = [n for n in versions(client, base)[:-keep] if n != active] if keep > 0 else []
    for name in old:
        drop_version(client, name)
        logger.info("dropped old index version %s", name)
    return old


def copy_collection(source: Any, target: Any, page: int = 500) -> int:
    """Copy every record (ids, vectors, texts, metadata) of ``source`` into ``target``; returns the count."""
    copied = offset = 0
    while True:
        got = source.get(include=["embeddings", "documents", "metadatas"], limit=page, offset=offset)
        ids = list(got["ids"])
        if ids:
            target.add(
                ids=ids,
                embeddings=[list(map(float, v)) for v in got["embeddings"]],
                documents=list(got["documents"]),
                metadatas=list(got["metadatas"]),
            )
            copied += len(ids)
        if len(ids) < page:
            return copied
        offset += page


def status_name(base: str) -> str:
    """Name of the collection whose metadata records the last publish attempt of ``base``."""
    return f"{base}{STATUS_SUFFIX}"


def read_publish_status(client: Any, base: str) -> dict[str, Any] | None:
    """The last publish attempt of ``base`` (``record_publish``), or ``None`` when none was recorded."""
    try:
        col = client.get_collection(status_name(base))
    except NotFoundError:
        return None
    return dict(col.metadata or {})


def record_publish(client: Any, base: str, *, refused: tuple[str, ...] = (), message: str = "") -> dict[str, Any]:
    """Record one ingest's outcome: ``refused`` for those reasons, else a success (published or already current).

    A success clears the refusal (the alert resolves) and sets ``last_success``. Called by the ingest while it
    holds the ingest lock, so the read-modify-write of the count is not raced.
    """
    old = read_publish_status(client, base) or {}
    now = time.time()
    status: dict[str, Any] = {
        "refused_total": int(old.get("refused_total", 0)) + (1 if refused else 0),
        "last_outcome": "refused" if refused else "ok",
        "last_reasons": ",".join(refused),
        "last_message": message[:500],
        "last_attempt": now,
        "last_success": float(old.get("last_success", 0.0)) if refused else now,
    }
    col = client.get_or_create_collection(status_name(base), metadata=status)
    col.modify(metadata=status)
    return status
