"""``python -m ingest``: bring the vector index in line with the catalogue folder.

Incremental (unchanged documents are skipped) and versioned: changes are applied to a copy of the
active index and readers, a running service included, switch to it in one step (``ingest.publish``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

from core.embeddings import make_embedder
from core.settings import get_settings
from core.vectorstore import VectorStore, open_client
from ingest.publish import publish


def main(argv: list[str] | None = None) -> int:
    """Run the ingest CLI; exit 1 if any file failed, 0 otherwise."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("--dir", type=Path, default=settings.catalogue_dir, help="folder with the documents")
    parser.add_argument("--collection", default=settings.chroma_collection)
    parser.add_argument(
        "--rebuild", action="store_true", help="build a new version from scratch (readers switch when it is complete)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a folder", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    embedder = make_embedder(settings.embedding_provider, settings.embedding_model, settings.embedding_device)
    client = open_client(settings.chroma_path, settings.chroma_url)
    done = publish(
        args.dir,
        client,
        args.collection,
        embedder,
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
        rebuild=args.rebuild,
        progress=lambda docs: tqdm(docs, desc="ingest", unit="doc"),
    )
    report = done.report
    store = VectorStore(client, args.collection, embedder.name)
    for path, why in report.failed.items():
        print(f"skipped {path}: {why}", file=sys.stderr)
    print(f"{report.summary()}; index holds {store.count()} chunks; {time.perf_counter() - t0:.1f} s")
    state = "readers switched to it" if done.switched else "unchanged, nothing written"
    print(f"active index version: {done.active} ({state})")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
