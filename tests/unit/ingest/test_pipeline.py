"""Incremental, idempotent ingest and token-measured splitting."""

from __future__ import annotations

from fakes import CATALOGUE, HashEmbedder, ephemeral_store, write_catalogue
from ingest.loaders import Document
from ingest.pipeline import chunk_document, ingest, make_splitter

KW = {"chunk_tokens": 200, "overlap_tokens": 20}


def doc_ids(store):
    return sorted({m["doc_id"] for m in store.collection.get(include=["metadatas"])["metadatas"]})


def test_second_run_on_unchanged_folder_writes_nothing(tmp_path):
    emb, store = HashEmbedder(), None
    store = ephemeral_store(emb)
    root = write_catalogue(tmp_path)
    first = ingest(root, store, emb, **KW)
    assert len(first.added) == 4 and first.chunks_written >= 4
    second = ingest(root, store, emb, **KW)
    assert second.added == second.updated == second.deleted == []
    assert len(second.skipped) == 4 and second.chunks_written == 0


def test_changed_document_replaces_its_chunks_and_deleted_disappears(tmp_path):
    emb = HashEmbedder()
    store = ephemeral_store(emb)
    root = write_catalogue(tmp_path)
    ingest(root, store, emb, **KW)
    before = store.count()
    (root / "policies/verzending.md").write_text(
        CATALOGUE["policies/verzending.md"].replace("4,95", "5,95"), encoding="utf-8"
    )
    (root / "policies/retourneren.md").unlink()
    rep = ingest(root, store, emb, **KW)
    assert rep.updated == ["verzending"] and rep.deleted == ["retourneren"]
    texts = store.collection.get(where={"doc_id": "verzending"})["documents"]
    assert any("5,95" in t for t in texts) and not any("4,95" in t for t in texts)
    assert "retourneren" not in doc_ids(store)
    assert store.count() == before - 1


def test_malformed_file_is_reported_and_others_ingested(tmp_path):
    emb = HashEmbedder()
    store = ephemeral_store(emb)
    root = write_catalogue(tmp_path)
    (root / "broken.json").write_text("{nope")
    rep = ingest(root, store, emb, **KW)
    assert list(rep.failed) == [str(root / "broken.json")]
    assert len(rep.added) == 4


def test_every_chunk_carries_product_metadata(tmp_path):
    emb = HashEmbedder()
    store = ephemeral_store(emb)
    ingest(write_catalogue(tmp_path), store, emb, **KW)
    metas = store.collection.get(where={"doc_id": "purrclean-autobox-9"})["metadatas"]
    assert metas and all(m["sku"] == "KH-LB-1001" and m["price_eur"] == 249.95 for m in metas)


def test_splitter_respects_token_budget_and_overlap():
    emb = HashEmbedder()
    body = "\n\n".join(f"Alinea {i}. " + " ".join(f"woord{i}_{j}" for j in range(40)) for i in range(12))
    doc = Document(doc_id="long", title="Lang document", text=body, source="x")
    chunks = chunk_document(doc, make_splitter(emb.token_length, 100, 10))
    assert len(chunks) > 4
    assert all(emb.token_length(c) <= 100 + 3 for c in chunks)  # +title line on later chunks
    assert all(c.startswith("Lang document") for c in chunks[1:])
