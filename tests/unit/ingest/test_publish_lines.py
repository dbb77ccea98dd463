"""Evidence lines are written, versioned, copied and dropped with their chunks; old index layouts are refused."""

from __future__ import annotations

import pytest

from core.index_versions import INDEX_LAYOUT, LAYOUT_KEY, active_name, lines_name, set_active, status_name, versions
from core.vectorstore import MODEL_KEY, IndexLayoutError, IndexNotReadyError, VectorStore
from fakes import CATALOGUE, HashEmbedder, ephemeral_store, write_catalogue
from ingest.pipeline import ingest
from ingest.publish import publish

KW = {"chunk_tokens": 200, "overlap_tokens": 20}


def names(client) -> set[str]:
    return {c if isinstance(c, str) else c.name for c in client.list_collections()}


def line_docs(collection) -> dict[str, list[str]]:
    got = collection.get(include=["documents", "metadatas"])
    out: dict[str, list[str]] = {}
    for text, meta in zip(got["documents"], got["metadatas"], strict=True):
        out.setdefault(meta["doc_id"], []).append(text)
    return out


def test_ingest_writes_lines_with_their_metadata(tmp_path):
    emb = HashEmbedder()
    store = ephemeral_store(emb)
    report = ingest(write_catalogue(tmp_path), store, emb, **KW)
    lines = store.lines_collection()
    assert lines.name == lines_name(store.name) and report.lines_written == lines.count() > 0
    got = lines.get(where={"doc_id": "purrclean-autobox-9"}, include=["documents", "metadatas"])
    first = next(m for m in got["metadatas"] if m["line"] == 0)
    fingerprint = first["fingerprint"]
    assert f"purrclean-autobox-9#{fingerprint[:8]}#L000" in got["ids"]
    assert first | {"context": ""} == {
        "doc_id": "purrclean-autobox-9",
        "line": 0,
        "title": "PurrClean AutoBox 9 zelfreinigende kattenbak",
        "context": "",
        "doc_type": "product",
        "product": "PurrClean AutoBox 9",
        "brand": "PurrClean",
        "fingerprint": fingerprint,
    }
    assert "Prijs: € 249,95" in got["documents"]
    assert (store.collection.metadata or {})[LAYOUT_KEY] == INDEX_LAYOUT


def test_a_changed_document_replaces_its_lines_new_before_old_and_a_deleted_one_loses_them(tmp_path):
    emb = HashEmbedder()
    store = ephemeral_store(emb)
    root = write_catalogue(tmp_path)
    ingest(root, store, emb, **KW)
    calls: list[str] = []
    real = store.lines_collection(store.collection)

    class Recording:
        name = real.name

        def __getattr__(self, attr):
            if attr in ("upsert", "delete"):
                calls.append(attr)
            return getattr(real, attr)

    store.lines_collection = lambda *a, **k: Recording()  # type: ignore[method-assign]
    (root / "policies/verzending.md").write_text(
        CATALOGUE["policies/verzending.md"].replace("4,95", "5,95"), encoding="utf-8"
    )
    (root / "policies/retourneren.md").unlink()
    ingest(root, store, emb, **KW)
    assert calls == ["upsert", "delete", "delete"]  # the new lines first, then the stale ones, then the deleted doc's
    docs = line_docs(real)
    assert "retourneren" not in docs
    assert any("5,95" in t for t in docs["verzending"]) and not any("4,95" in t for t in docs["verzending"])


def test_publish_versions_the_lines_with_the_chunks(tmp_path, client, base):
    root = write_catalogue(tmp_path / "c")
    first = publish(root, client, base, HashEmbedder(), **KW)
    assert lines_name(first.active) in names(client)
    before = line_docs(client.get_collection(lines_name(first.active)))
    (root / "policies/verzending.md").write_text(
        CATALOGUE["policies/verzending.md"].replace("4,95", "5,95"), encoding="utf-8"
    )
    second = publish(root, client, base, HashEmbedder(), **KW)
    after = line_docs(client.get_collection(lines_name(second.active)))
    assert second.report.updated == ["verzending"] and second.report.lines_written == len(after["verzending"])
    assert {d: sorted(t) for d, t in after.items() if d != "verzending"} == {
        d: sorted(t) for d, t in before.items() if d != "verzending"
    }  # copied, not re-embedded
    assert any("5,95" in t for t in after["verzending"])
    assert any("4,95" in t for t in before["verzending"])  # the old version is untouched


def test_a_failed_publish_leaves_no_lines_collection_behind(tmp_path, client, base):
    root = write_catalogue(tmp_path / "c")
    before = publish(root, client, base, HashEmbedder(), **KW).active

    class BrokenOnLines(HashEmbedder):
        def embed_passages(self, texts):
            if any(": " in t for t in texts):  # the lines' passages ("<context>: <text>"), after the chunks
                raise RuntimeError("embedding model crashed")
            return super().embed_passages(texts)

    (root / "policies/verzending.md").write_text("---\nid: verzending\ntitle: V\n---\nGratis verzending\n")
    with pytest.raises(RuntimeError, match="crashed"):
        publish(root, client, base, BrokenOnLines(), **KW)
    assert active_name(client, base) == before and versions(client, base) == [before]
    kept = {before, lines_name(before), f"{base}__active", status_name(base)}  # status: the last publish's outcome
    assert {n for n in names(client) if n.startswith(base)} == kept


def test_prune_drops_the_lines_of_dropped_versions(tmp_path, client, base):
    root = write_catalogue(tmp_path / "c")
    for price in ("1,00", "2,00", "3,00", "4,00"):
        (root / "policies/verzending.md").write_text(f"---\nid: verzending\ntitle: V\n---\nKost {price} euro.\n")
        publish(root, client, base, HashEmbedder(), **KW)
    kept = versions(client, base)
    assert len(kept) == 2
    expected = {*kept, *map(lines_name, kept), f"{base}__active", status_name(base)}
    assert {n for n in names(client) if n.startswith(base)} == expected


def test_an_index_of_another_layout_is_refused_with_the_reason(client, base):
    client.create_collection(base, metadata={MODEL_KEY: "m", "hnsw:space": "cosine"})  # layout 1: no marker
    refused = r"built with layout 1, this service needs layout 2 .*: run `make ingest`"
    with pytest.raises(IndexLayoutError, match=refused):
        VectorStore(client, base, "m")
    client.create_collection(f"{base}-3", metadata={MODEL_KEY: "m", LAYOUT_KEY: 3})
    with pytest.raises(IndexNotReadyError, match="layout 3"):
        VectorStore(client, f"{base}-3", "m")
    assert VectorStore(client, base, "m", create=True).name == base  # the ingest may still open it to write


def test_publish_rebuilds_an_older_layout_from_scratch(tmp_path, client, base):
    emb = HashEmbedder()
    old = client.create_collection(f"{base}__v20200101T000000000000", metadata={MODEL_KEY: emb.name})
    old.add(ids=["stale#0"], embeddings=[[0.1] * 256], documents=["oud"], metadatas=[{"doc_id": "stale"}])
    set_active(client, base, old.name)
    # The old version's only document is not in the catalogue: a deletion of 100 %, intended here.
    done = publish(write_catalogue(tmp_path / "c"), client, base, emb, **KW, allow_deletions=True)
    assert done.switched and len(done.report.added) == len(CATALOGUE) and not done.report.updated
    store = VectorStore(client, base, emb.name)
    assert store.name == done.active and "stale" not in {h.doc_id for h in store.all_chunks()}
    assert store.lines_collection().count() > 0
