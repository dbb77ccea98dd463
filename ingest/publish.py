"""Versioned ingest: changes go into a copy of the active index, and readers switch in one step.

The product feed changes daily and is re-ingested while the service answers. ``publish``
checks first (a dry run, nothing embedded or written) whether anything changed; if so it copies
the active version (``core.index_versions``), applies the incremental ingest to the copy, and
moves the pointer only when the copy is complete. A failure on the way leaves the pointer, and so
every reader, on the old version, and the half-built copy is dropped. A version's evidence lines
(``<version>__lines``) are copied, written and dropped with its chunks; an active version of an older
storage layout (``core.index_versions.INDEX_LAYOUT``) is not copied: the new version is built from scratch.

Before anything is embedded, and again before the pointer moves, the safety checks of ``ingest.safety``
run: a previously indexed file that fails to load, a deletion above ``max_delete_share`` (unless
``allow_deletions``) or a version without chunks refuse the publish (``Published.refused``); the pointer
stays on the active version. Every outcome is recorded in the index store (``record_publish``) for the
service's ``/metrics``. A broken pointer (``IndexPointerError``) stops the ingest, unless ``rebuild``:
then a fresh version is built and the pointer rewritten (the repair; the deletion check has no old version).
Callers hold the ingest lock (``ingest.lock``) around ``publish``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.embeddings import Embedder
from core.index_versions import (
    IndexPointerError,
    active_name,
    copy_collection,
    drop_version,
    new_version_name,
    prune,
    record_publish,
    set_active,
)
from core.vectorstore import IndexLayoutError, IndexNotReadyError, VectorStore
from ingest.loaders import Document
from ingest.pipeline import IngestReport, ingest, load_documents
from ingest.safety import Refusal, check, indexed_sources

logger = logging.getLogger(__name__)

KEEP_VERSIONS = 2  # the active version and the one before it (readers still finishing a request)
MAX_DELETE_SHARE = 0.5  # the default of INGEST_MAX_DELETE_SHARE


@dataclass(frozen=True, kw_only=True)
class Published:
    """Outcome of ``publish``: what changed and which version readers use now."""

    report: IngestReport
    active: str
    switched: bool
    refused: Refusal | None = None


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
    max_delete_share: float = MAX_DELETE_SHARE,
    allow_deletions: bool = False,
) -> Published:
    """Bring the index named ``base`` in line with ``root`` without readers ever seeing a partial update."""
    try:
        previous = indexed_sources(client, base)
    except IndexPointerError as exc:
        if not rebuild:
            raise
        logger.warning("%s; --rebuild writes a new version and repairs the pointer", exc)
        previous = {}
    loaded = IngestReport()
    docs = load_documents(root, loaded)
    safety = functools.partial(
        check, root, previous, max_delete_share=max_delete_share, allow_deletions=allow_deletions
    )
    refusal = safety({d.doc_id for d in docs}, loaded.failed)  # before anything is embedded
    if refusal is not None:
        return _refuse(client, base, loaded, refusal)
    current = None if rebuild else _open_active(client, base, embedder)
    if current is not None:
        plan = ingest(root, current, embedder, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, dry_run=True)
        if not (plan.added or plan.updated or plan.deleted):
            plan.skipped.extend(plan.added)  # nothing to do: nothing is written, readers stay where they are
            record_publish(client, base)
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
        # Again on what was built: the folder may have changed since (a feed rewritten while this ran).
        built = set(report.added + report.updated + report.skipped)
        refusal = safety(built, report.failed)
        if refusal is None and target.collection.count() == 0:  # documents that produced no chunks
            refusal = Refusal(reasons=("empty",), messages=("the new version holds no chunks",))
        if refusal is not None:
            drop_version(client, name)
            return _refuse(client, base, report, refusal)
        set_active(client, base, name)
    except BaseException:
        with contextlib.suppress(Exception):
            drop_version(client, name)
        logger.error("ingest into %s failed; readers stay on the active version of %s", name, base)
        raise
    record_publish(client, base)
    prune(client, base, keep)
    return Published(report=report, active=name, switched=True)


def _active_or_none(client: Any, base: str) -> str:
    """The active version's name, or "" when there is none (a first ingest) or the pointer is broken."""
    try:
        name = active_name(client, base)
        client.get_collection(name)
    except Exception:  # IndexPointerError, or NotFoundError / ValueError by chromadb version
        return ""
    return name


def _refuse(client: Any, base: str, report: IngestReport, refusal: Refusal) -> Published:
    """Record a refused publish; the pointer, and every reader, stay on the active version."""
    record_publish(client, base, refused=refusal.reasons, message=refusal.message)
    active = _active_or_none(client, base)
    logger.error("publish of %s refused (%s); readers stay on %s", base, ", ".join(refusal.reasons), active or "none")
    return Published(report=report, active=active, switched=False, refused=refusal)
