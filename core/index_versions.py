"""Versioned collections: a re-ingest builds a new version and switches readers over in one step.

Chroma has no aliases, so the name a service is configured with (``CHROMA_COLLECTION``, say
``catalogue``) points at the active version through the metadata of a small pointer collection
``catalogue__active``. A versioned ingest copies the active version (vectors included, nothing is
embedded again), applies the changes to the copy, and only then moves the pointer. Readers hold
one version per request (``VectorStore.current``), so they see the old index or the new one, never
a mix of both. Without a pointer the configured name is used as it is (indexes built before this).

Every version has a sibling collection ``<version>__lines`` with the evidence lines of its documents
(``ingest.lines``, ``core.evidence``); it is copied, switched and dropped together with its version. The
chunk collection records the storage layout it was written with (``index_layout``): the service reads only
the layout it knows (``INDEX_LAYOUT``), and a versioned ingest rebuilds an index of an older layout from scratch.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

POINTER_SUFFIX = "__active"
VERSION_MARK = "__v"
ACTIVE_KEY = "active"
LINES_SUFFIX = "__lines"
LAYOUT_KEY = "index_layout"  # collection metadata of a chunk collection: the layout it was written with
# 1: chunks only (no ``index_layout`` key); 2: chunks plus the ``<name>__lines`` collection of evidence lines.
INDEX_LAYOUT = 2


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


def active_name(client: Any, base: str) -> str:
    """The collection readers of ``base`` should use now: the pointer's target, else ``base`` itself."""
    try:
        pointer = client.get_collection(pointer_name(base))
    except Exception:  # no pointer (NotFoundError / ValueError by chromadb version): unversioned index
        return base
    target = (pointer.metadata or {}).get(ACTIVE_KEY)
    return str(target) if target else base


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
