"""Versioned ingest: changes go into a copy of the active index, and readers switch in one step.

The product feed changes daily and is re-ingested while the service answers. ``publish``
checks first (a dry run, nothing embedded or written) whether anything changed; if so it copies
the active version (``core.index_versions``), applies the incremental ingest to the copy, and
moves the pointer only when the copy is complete. A failure on the way leaves the pointer, and so
every reader, on the old version, and the half-built copy is dropped. A version's evidence lines
(``<version>__lines``) are copied, written and dropped with its chunks; an active version of an older
storage layout (``core.index_versions.INDEX_LAYOUT``) is not copied: the new version is built from scratch.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.embeddings import Embedder
from core.index_versions import active_name, copy_collection, drop_version, new_version_name, prune, set_active
from core.vectorstore import IndexLayoutError, IndexNotReadyError, VectorStore
from ingest.loaders import Document
from ingest.pipeline import IngestReport, ingest

logger = logging.getLogger(__name__)

KEEP_VERSIONS = 2  # the active version and the one before it (readers still finishing a request)


@dataclass(frozen=True, kw_only=True)
class Published:
    """Outcome of ``publish``: what changed and which version readers use now."""

    report: IngestReport
    active: str
    switched: bool


def _open_active(client: Any, base: str, embedder: Embedder) -> VectorStore | None:
    try:
        return VectorStore(client, base, embedder.name)
    except IndexLayoutError as exc:
        logger.warning("%s; building a new version from scratch", exc)
        return None
    except IndexNotReadyError:
        return None


def publish(
    root: Path,
    client: Any,
    base: str,
    embedder: Embedder,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    rebuild: bool = False,
    keep: int = KEEP_VERSIONS,
    progress: Callable[[Iterable[Document]], Iterable[Document]] = lambda it: it,
) -> Published:
    """Bring the index named ``base`` in line with ``root`` without readers ever seeing a partial update."""
    current = None if rebuild else _open_active(client, base, embedder)
    if current is not None:
        plan = ingest(root, current, embedder, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, dry_run=True)
        if not (plan.added or plan.updated or plan.deleted):
            plan.skipped.extend(plan.added)  # nothing to do: nothing is written, readers stay where they are
            return Published(report=plan, active=current.name, switched=False)
    name = new_version_name(base)
    target = VectorStore(client, name, embedder.name, create=True)
    try:
        if current is not None:
            source = current.current()
            copied = copy_collection(source, target.collection)
            lines = copy_collection(current.lines_collection(source), target.lines_collection(create=True))
            logger.info("copied %d chunks and %d lines of %s into %s", copied, lines, current.name, name)
        report = ingest(
            root, target, embedder, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, progress=progress
        )
        set_active(client, base, name)
    except BaseException:
        with contextlib.suppress(Exception):
            drop_version(client, name)
        logger.error("ingest into %s failed; readers stay on %s", name, active_name(client, base))
        raise
    prune(client, base, keep)
    return Published(report=report, active=name, switched=True)
