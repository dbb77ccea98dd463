"""``python -m ingest``: bring the vector index in line with the catalogue folder.

Incremental (unchanged documents are skipped) and versioned: changes are applied to a copy of the
active index and readers, a running service included, switch to it in one step (``ingest.publish``).

Exit codes: 0 published (or nothing changed); 1 published, but files that were never indexed failed to load;
2 usage error (no such folder); 3 publish refused (``ingest.safety``: a previously indexed file failed to load,
too many deletions, or no chunks): the active version stays, nothing was switched; 4 another ingest holds the
lock, or the lock could not be taken (``ingest.lock``); 5 the index pointer is broken (``--rebuild`` writes a
new version and repairs it).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

from core.embeddings import make_embedder
from core.index_versions import IndexPointerError
from core.settings import get_settings
from core.vectorstore import VectorStore, open_client
from ingest.lock import IngestLockError, held, make_lock
from ingest.publish import Published, publish

REFUSED, LOCKED, BROKEN_POINTER = 3, 4, 5


def main(argv: list[str] | None = None) -> int:
    """Run the ingest CLI; the exit codes are in the module's docstring."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("--dir", type=Path, default=settings.catalogue_dir, help="folder with the documents")
    parser.add_argument("--collection", default=settings.chroma_collection)
    parser.add_argument(
        "--rebuild", action="store_true", help="build a new version from scratch (readers switch when it is complete)"
    )
    parser.add_argument(
        "--allow-deletions",
        action="store_true",
        help="publish even if the new version deletes more than INGEST_MAX_DELETE_SHARE of the documents",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a folder", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    # Passages stay on torch under the ONNX query encoder (same weights, same index identity: evals.bench_encoder).
    provider = "sentence-transformers" if settings.embedding_provider == "onnx" else settings.embedding_provider
    embedder = make_embedder(provider, settings.embedding_model, settings.embedding_device)
    client = open_client(settings.chroma_path, settings.chroma_url)
    db_url = settings.database_url.get_secret_value() if settings.database_url is not None else ""
    lock = make_lock(
        settings.ingest_lock,
        name=args.collection,
        chroma_path=settings.chroma_path,
        database_url=db_url,
        redis_url=settings.redis_url or "",
    )
    try:
        with held(lock, settings.ingest_lock_wait_s):
            done = publish(
                args.dir,
                client,
                args.collection,
                embedder,
                chunk_tokens=settings.chunk_tokens,
                overlap_tokens=settings.chunk_overlap_tokens,
                rebuild=args.rebuild,
                progress=lambda docs: tqdm(docs, desc="ingest", unit="doc"),
                max_delete_share=settings.ingest_max_delete_share,
                allow_deletions=args.allow_deletions,
            )
    except IngestLockError as exc:  # busy, or the shared lock's store is down
        print(f"error: {exc}", file=sys.stderr)
        return LOCKED
    except IndexPointerError as exc:
        print(f"error: {exc}; nothing was published", file=sys.stderr)
        return BROKEN_POINTER
    if done.refused is not None:
        return _refused(done)
    report = done.report
    store = VectorStore(client, args.collection, embedder.name)
    for path, why in report.failed.items():
        print(f"skipped {path}: {why}", file=sys.stderr)
    print(f"{report.summary()}; index holds {store.count()} chunks; {time.perf_counter() - t0:.1f} s")
    state = "readers switched to it" if done.switched else "unchanged, nothing written"
    print(f"active index version: {done.active} ({state})")
    return 1 if report.failed else 0


def _refused(done: Published) -> int:
    """Print why the publish was refused; the active version stays."""
    assert done.refused is not None
    for path, why in done.report.failed.items():
        print(f"failed {path}: {why}", file=sys.stderr)
    print(f"error: publish refused ({', '.join(done.refused.reasons)}): {done.refused.message}", file=sys.stderr)
    print(f"active index version: {done.active or 'none'} (unchanged, still served)", file=sys.stderr)
    return REFUSED


if __name__ == "__main__":
    raise SystemExit(main())
