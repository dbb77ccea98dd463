"""Incremental, idempotent ingestion: unchanged documents are skipped, changed ones replaced."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from core.embeddings import Embedder
from core.index_versions import INDEX_LAYOUT
from core.vectorstore import VectorStore
from ingest.lines import SPLIT_VERSION, line_passage, split_lines
from ingest.loaders import Document, MalformedDocumentError, iter_files, load_file

logger = logging.getLogger(__name__)

SEPARATORS = ["\n## ", "\n### ", "\n\n", "\n", ". ", " ", ""]


@dataclass(kw_only=True)
class IngestReport:
    """What one ingest run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    chunks_written: int = 0
    lines_written: int = 0

    def summary(self) -> str:
        """One human-readable line."""
        return (
            f"added {len(self.added)}, updated {len(self.updated)}, deleted {len(self.deleted)}, "
            f"unchanged {len(self.skipped)}, failed {len(self.failed)}; {self.chunks_written} chunks and "
            f"{self.lines_written} evidence lines written"
        )


def make_splitter(
    length_fn: Callable[[str], int], chunk_tokens: int, overlap_tokens: int
) -> RecursiveCharacterTextSplitter:
    """A recursive splitter measured in tokens of the embedding model's tokenizer."""
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_tokens,
        chunk_overlap=overlap_tokens,
        length_function=length_fn,
        separators=SEPARATORS,
        keep_separator="start",
    )


def doc_fingerprint(doc: Document, params: dict[str, Any]) -> str:
    """Hash of everything that determines a document's chunks and vectors."""
    payload = json.dumps(
        {"text": doc.text, "title": doc.title, "meta": doc.metadata, "params": params}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_documents(root: Path, report: IngestReport) -> list[Document]:
    """Load every file under ``root``; malformed files are reported by name and skipped."""
    docs: dict[str, Document] = {}
    for path in iter_files(root):
        try:
            loaded = load_file(path)
        except (MalformedDocumentError, UnicodeDecodeError, OSError) as exc:
            report.failed[str(path)] = str(exc)
            logger.warning("skipping malformed file %s: %s", path, exc)
            continue
        for doc in loaded:
            if doc.doc_id in docs:
                report.failed[str(path)] = f"duplicate document id {doc.doc_id!r} (also in {docs[doc.doc_id].source})"
                continue
            docs[doc.doc_id] = doc
    return list(docs.values())


def _existing(collection: Any) -> dict[str, tuple[str, list[str]]]:
    """doc_id -> (fingerprint, record ids) of what ``collection`` (chunks or lines) holds now."""
    got = collection.get(include=["metadatas"])
    out: dict[str, tuple[str, list[str]]] = {}
    for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
        meta = meta or {}
        doc_id = str(meta.get("doc_id"))
        fp, ids = out.get(doc_id, (str(meta.get("fingerprint")), []))
        ids.append(cid)
        out[doc_id] = (fp, ids)
    return out


def chunk_document(doc: Document, splitter: RecursiveCharacterTextSplitter) -> list[str]:
    """Split ``doc``; chunks after the first repeat the title so each stands on its own."""
    pieces = splitter.split_text(doc.text)
    return [p if i == 0 else f"{doc.title}\n{p.strip()}" for i, p in enumerate(pieces)]


def _write_lines(doc: Document, fp: str, lines_col: Any, embedder: Embedder) -> list[str]:
    """Split ``doc`` into evidence lines, embed them and upsert them into ``lines_col``; returns their ids."""
    lines = split_lines(doc)
    if not lines:
        return []
    ids = [f"{doc.doc_id}#{fp[:8]}#L{line.line:03d}" for line in lines]
    vectors = embedder.embed_passages([line_passage(line) for line in lines])
    product = str(doc.metadata.get("name", "")) if doc.metadata.get("doc_type") == "product" else ""
    meta = {
        "doc_id": doc.doc_id,
        "title": doc.title,
        "doc_type": str(doc.metadata.get("doc_type", "")),
        "product": product,
        "brand": str(doc.metadata.get("brand", "")) if product else "",
        "fingerprint": fp,
    }
    lines_col.upsert(
        ids=ids,
        embeddings=[v.tolist() for v in vectors],
        documents=[line.text for line in lines],
        metadatas=[{**meta, "line": line.line, "context": line.context} for line in lines],
    )
    return ids


def ingest(
    root: Path,
    store: VectorStore,
    embedder: Embedder,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    progress: Callable[[Iterable[Document]], Iterable[Document]] = lambda it: it,
    dry_run: bool = False,
) -> IngestReport:
    """Bring the index in line with the documents under ``root`` (``dry_run``: only report what would change).

    Each document's evidence lines (``ingest.lines``) go into the lines collection of ``store`` with the same
    fingerprint. New chunks and lines of a changed document are written before its old ones are removed,
    so a reader never finds the document missing; ``ingest.publish`` goes further and
    applies the changes to a copy that readers only see once it is complete.
    """
    report = IngestReport()
    docs = load_documents(root, report)
    params = {
        "chunk_tokens": chunk_tokens,
        "overlap": overlap_tokens,
        "model": embedder.name,
        "layout": INDEX_LAYOUT,
        "lines": SPLIT_VERSION,
    }
    splitter = make_splitter(embedder.token_length, chunk_tokens, overlap_tokens)
    existing = _existing(store.collection)
    lines_col: Any = None if dry_run else store.lines_collection(store.collection, create=True)
    old_lines = {} if dry_run else _existing(lines_col)
    for doc in progress(docs):
        fp = doc_fingerprint(doc, params)
        old = existing.get(doc.doc_id)
        if old and old[0] == fp:
            report.skipped.append(doc.doc_id)
            continue
        if dry_run:
            (report.updated if old else report.added).append(doc.doc_id)
            continue
        chunks = chunk_document(doc, splitter)
        vectors = embedder.embed_passages(chunks)
        ids = [f"{doc.doc_id}#{fp[:8]}#{i:03d}" for i in range(len(chunks))]
        meta = {**doc.metadata, "doc_id": doc.doc_id, "title": doc.title, "source": doc.source, "fingerprint": fp}
        store.collection.upsert(
            ids=ids,
            embeddings=[v.tolist() for v in vectors],
            documents=chunks,
            metadatas=[{**meta, "chunk": i} for i in range(len(chunks))],
        )
        report.chunks_written += len(chunks)
        line_ids = set(_write_lines(doc, fp, lines_col, embedder))
        report.lines_written += len(line_ids)
        stale_lines = [lid for lid in old_lines.get(doc.doc_id, ("", []))[1] if lid not in line_ids]
        if stale_lines:
            lines_col.delete(ids=stale_lines)
        if old:
            stale = [cid for cid in old[1] if cid not in set(ids)]
            if stale:
                store.collection.delete(ids=stale)
            report.updated.append(doc.doc_id)
        else:
            report.added.append(doc.doc_id)
    current = {d.doc_id for d in docs}
    for doc_id, (_, ids) in existing.items():
        if doc_id not in current:
            if not dry_run:
                store.collection.delete(ids=ids)
            report.deleted.append(doc_id)
    if not dry_run:  # lines of removed documents (also any left without their chunks)
        gone = [lid for doc_id, (_, lids) in old_lines.items() if doc_id not in current for lid in lids]
        if gone:
            lines_col.delete(ids=gone)
    return report
