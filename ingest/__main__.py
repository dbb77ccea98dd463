"""``python -m ingest``: bring the vector index in line with the catalogue folder."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

from core.embeddings import make_embedder
from core.settings import get_settings
from core.vectorstore import VectorStore, open_client
from ingest.pipeline import ingest


def main(argv: list[str] | None = None) -> int:
    """Run the ingest CLI; exit 1 if any file failed, 0 otherwise."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("--dir", type=Path, default=settings.catalogue_dir, help="folder with the documents")
    parser.add_argument("--collection", default=settings.chroma_collection)
    parser.add_argument("--rebuild", action="store_true", help="drop the collection and ingest everything")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a folder", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    embedder = make_embedder(settings.embedding_provider, settings.embedding_model, settings.embedding_device)
    client = open_client(settings.chroma_path, settings.chroma_url)
    if args.rebuild:
        with contextlib.suppress(Exception):  # an absent collection is fine
            client.delete_collection(args.collection)
    store = VectorStore(client, args.collection, embedder.name, create=True)
    report = ingest(
        args.dir,
        store,
        embedder,
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
        progress=lambda docs: tqdm(docs, desc="ingest", unit="doc"),
    )
    for path, why in report.failed.items():
        print(f"skipped {path}: {why}", file=sys.stderr)
    print(f"{report.summary()}; index holds {store.count()} chunks; {time.perf_counter() - t0:.1f} s")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
