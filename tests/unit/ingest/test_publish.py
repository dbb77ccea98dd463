"""Versioned ingest: a re-ingest is invisible until complete, and readers never see a mix of versions."""

from __future__ import annotations

import json
import threading

import pytest

from core.index_versions import active_name, versions
from core.vectorstore import VectorStore
from fakes import CATALOGUE, HashEmbedder, write_catalogue
from ingest.publish import publish

PARAMS = {"chunk_tokens": 200, "overlap_tokens": 20}


def feed(date: str, price: float, n: int = 30) -> str:
    """A product feed of ``n`` products that all carry ``price``: a reader can tell versions apart."""
    products = [
        {
            "id": f"voer-{i:02d}",
            "title": f"Kattenvoer {i}",
            "doc_type": "product",
            "price_eur": price,
            "description": f"Droogvoer nummer {i}.",
        }
        for i in range(n)
    ]
    return json.dumps({"feed_date": date, "products": products})


def test_first_ingest_creates_a_version_and_points_at_it(tmp_path, client, base):
    root = write_catalogue(tmp_path / "c")
    done = publish(root, client, base, HashEmbedder(), **PARAMS)
    assert done.switched and done.active == active_name(client, base) == versions(client, base)[0]
    assert sorted(done.report.added) == sorted(
        ["purrclean-autobox-9", "catcave-classic-40", "verzending", "retourneren"]
    )
    assert VectorStore(client, base, HashEmbedder.name).count() > 0


def test_unchanged_folder_writes_nothing(tmp_path, client, base):
    root = write_catalogue(tmp_path / "c")
    first = publish(root, client, base, HashEmbedder(), **PARAMS)
    again = publish(root, client, base, HashEmbedder(), **PARAMS)
    assert not again.switched and again.active == first.active
    assert versions(client, base) == [first.active]
    assert len(again.report.skipped) == len(CATALOGUE) and not (again.report.added or again.report.updated)


def test_a_change_builds_a_new_version_and_keeps_only_two(tmp_path, client, base):
    root = write_catalogue(tmp_path / "c")
    names = [publish(root, client, base, HashEmbedder(), **PARAMS).active]
    for price in (1.0, 2.0, 3.0):
        (root / "feed.json").write_text(feed("2026-11-27", price, n=2), encoding="utf-8")
        done = publish(root, client, base, HashEmbedder(), **PARAMS)
        assert done.switched
        names.append(done.active)
    assert versions(client, base) == names[-2:]  # the active one and the one before it
    store = VectorStore(client, base, HashEmbedder.name)
    texts = store.collection.get(include=["documents"])["documents"]
    assert any("3,00" in t for t in texts) and not any("2,00" in t for t in texts)


def test_failed_ingest_leaves_readers_on_the_old_version(tmp_path, client, base):
    root = write_catalogue(tmp_path / "c")
    before = publish(root, client, base, HashEmbedder(), **PARAMS).active

    class Broken(HashEmbedder):
        def embed_passages(self, texts):
            raise RuntimeError("embedding model crashed")

    (root / "feed.json").write_text(feed("2026-11-27", 5.0, n=2), encoding="utf-8")
    with pytest.raises(RuntimeError, match="crashed"):
        publish(root, client, base, Broken(), **PARAMS)
    assert active_name(client, base) == before
    assert versions(client, base) == [before]  # the half-built copy is gone


def test_readers_see_the_old_or_the_new_prices_never_a_mix(tmp_path, client, base):
    root = write_catalogue(tmp_path / "c", {"feed.json": feed("2026-11-26", 10.0)})
    publish(root, client, base, HashEmbedder(), **PARAMS)
    reader = VectorStore(client, base, HashEmbedder.name, refresh_s=0.0)
    query = HashEmbedder().embed_queries(["Kattenvoer droogvoer prijs"])[0]
    seen: list[set[str]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            col = reader.current()  # one version per request
            hits = reader.search(query, 30, col)
            seen.append({"10,00" if "10,00" in h.text else "12,50" if "12,50" in h.text else "?" for h in hits})

    thread = threading.Thread(target=read)
    thread.start()
    try:
        (root / "feed.json").write_text(feed("2026-11-27", 12.5), encoding="utf-8")
        done = publish(root, client, base, HashEmbedder(), **PARAMS)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert done.switched and len(done.report.updated) == 30
    assert seen and all(len(prices) == 1 for prices in seen), [p for p in seen if len(p) != 1][:3]
    assert reader.current().name == done.active
    assert {"12,50"} == {h for h in ("10,00", "12,50") if h in reader.search(query, 1)[0].text}
