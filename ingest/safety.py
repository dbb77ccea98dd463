"""Checks before a new index version is published: the shop keeps serving the last good index.

``ingest.publish`` runs them on what it loaded from the catalogue folder and on what the active
version holds, before anything is embedded or written, and once more on the built version before
the pointer moves. A refused publish leaves the pointer, and every reader, on the active version.

- ``failed_files``: a file that the active version has documents from failed to load (the daily
  feed truncated mid-upload, a bad edit). The publish is refused as a whole rather than keeping
  that file's old documents in a new version: a version that mixes today's files with yesterday's
  copy of a broken one is a state nobody checked (and a next run could not tell it apart from a
  good one); the active version is exactly the last good index, and the next ingest after the file
  is fixed applies every change at once. A file that was never indexed and fails is only reported
  (the CLI exits 1 after publishing the rest), as before: nothing the shop serves depends on it.
- ``deletions``: the new version would delete more than ``max_delete_share`` of the active version's
  documents (a half-synced folder, a feed that lost its products). An intended big deletion is
  published with ``allow_deletions`` (``python -m ingest --allow-deletions``).
- ``empty``: the new version would hold no chunks (an empty or unmounted catalogue folder). Never
  published, whatever the flags: an empty index answers nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.index_versions import IndexPointerError, active_name

LISTED = 10  # files / documents named in a message, at most


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why a publish was refused: the reasons (``core.index_versions.REFUSAL_REASONS``), the files, a message."""

    reasons: tuple[str, ...]
    files: tuple[str, ...] = ()
    messages: tuple[str, ...] = field(default_factory=tuple)

    @property
    def message(self) -> str:
        """One line for the operator."""
        return "; ".join(self.messages)


def indexed_sources(client: Any, base: str) -> dict[str, str]:
    """doc_id -> source file of the documents in the active version of ``base`` (empty when there is none).

    Read from the chunk metadata directly, whatever the version's layout or embedding model, so the checks
    also hold for a ``--rebuild``. Raises ``core.index_versions.IndexPointerError`` for a broken pointer.
    """
    name = active_name(client, base)
    try:
        col = client.get_collection(name)
    except Exception as exc:  # no index yet (NotFoundError / ValueError by chromadb version)
        if name != base:  # the pointer names a version that is gone: the last good index is unknown
            raise IndexPointerError(f"the index pointer of {base!r} names {name!r}, which is missing") from exc
        return {}
    got = col.get(include=["metadatas"])
    return {str(m.get("doc_id")): str(m.get("source", "")) for m in got["metadatas"] if m}


def _same_file(source: str, path: Path, root: Path) -> bool:
    """Whether an indexed ``source`` is ``path`` (also when the catalogue folder was mounted elsewhere)."""
    if source == str(path):
        return True
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        return False
    return source.replace("\\", "/").endswith("/" + rel)


def _names(items: Iterable[str]) -> str:
    items = sorted(items)
    more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return ", ".join(items[:LISTED]) + more


def check(
    root: Path,
    previous: dict[str, str],
    loaded: set[str],
    failed: dict[str, str],
    *,
    max_delete_share: float,
    allow_deletions: bool,
) -> Refusal | None:
    """The refusal for publishing ``loaded`` (doc ids) over ``previous`` (doc_id -> source), or ``None``."""
    reasons: list[str] = []
    files: list[str] = []
    messages: list[str] = []
    sources = set(previous.values())
    broken = [p for p in failed if any(_same_file(s, Path(p), root) for s in sources)]
    if broken:
        reasons.append("failed_files")
        files += broken
        why = "; ".join(f"{p}: {failed[p]}" for p in sorted(broken)[:LISTED])
        messages.append(f"previously indexed file(s) failed to load, their documents would be deleted: {why}")
    if not loaded:
        reasons.append("empty")
        messages.append(f"the new version would hold no chunks (no documents loaded from {root}: empty or unmounted?)")
    broken_docs = {d for d, s in previous.items() if any(_same_file(s, Path(p), root) for p in broken)}
    gone = set(previous) - loaded - broken_docs  # a failed file's documents are its own reason, above
    share = len(gone) / len(previous) if previous else 0.0
    if loaded and share > max_delete_share and not allow_deletions:
        reasons.append("deletions")
        messages.append(
            f"the new version would delete {len(gone)} of {len(previous)} documents ({share:.0%} > "
            f"INGEST_MAX_DELETE_SHARE {max_delete_share:.0%}): {_names(gone)}; "
            "use --allow-deletions if this is intended"
        )
    if not reasons:
        return None
    return Refusal(reasons=tuple(reasons), files=tuple(sorted(files)), messages=tuple(messages))
