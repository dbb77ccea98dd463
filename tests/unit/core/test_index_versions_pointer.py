"""A broken index pointer is an error (``/ready`` not ready, no answers), never a fallback to the legacy collection."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.health import index_check
from core.index_versions import IndexPointerError, active_name, pointer_name, set_active
from core.resources import set_resources
from core.vectorstore import VectorStore
from fakes import HashEmbedder, fake_resources, write_catalogue
from ingest.publish import publish


def legacy(client, base: str) -> None:
    """An unversioned index under the configured name itself, with a stale price."""
    col = client.create_collection(base, metadata={"embedding_model": HashEmbedder.name, "index_layout": 2})
    emb = HashEmbedder().embed_passages(["Prijs € 1,00 (oud)"])[0].tolist()
    col.add(ids=["old#0"], embeddings=[emb], documents=["Prijs € 1,00 (oud)"], metadatas=[{"doc_id": "old"}])


def test_without_a_pointer_the_legacy_index_is_used(client, base):
    legacy(client, base)
    assert active_name(client, base) == base
    store = VectorStore(client, base, HashEmbedder.name)
    assert store.name == base and index_check(store) == (1, "ok (1 chunks)")


@pytest.mark.parametrize("metadata", [{"active": ""}, {"switched": "2026-12-07"}, {"active": 7}])
def test_a_pointer_that_names_no_version_is_an_error(client, base, metadata):
    legacy(client, base)
    client.create_collection(pointer_name(base), metadata=metadata)
    with pytest.raises(IndexPointerError, match="names no version"):
        active_name(client, base)
    with pytest.raises(IndexPointerError):
        VectorStore(client, base, HashEmbedder.name)


def test_a_pointer_to_a_missing_version_is_an_error_not_the_legacy_index(client, base):
    legacy(client, base)
    set_active(client, base, f"{base}__v20000101T000000000000")
    with pytest.raises(IndexPointerError, match="which is missing"):
        VectorStore(client, base, HashEmbedder.name)


def test_an_unreadable_pointer_is_an_error(client, base):
    legacy(client, base)

    class Down:
        def get_collection(self, name):
            raise ConnectionError("chroma server unreachable")

        def list_collections(self):
            raise ConnectionError("chroma server unreachable")

    with pytest.raises(IndexPointerError, match="unreachable"):
        active_name(Down(), base)


def test_a_running_reader_stops_serving_when_the_pointer_breaks_and_recovers(tmp_path, client, base):
    legacy(client, base)
    good = publish(write_catalogue(tmp_path / "c"), client, base, HashEmbedder(), chunk_tokens=200, overlap_tokens=20)
    store = VectorStore(client, base, HashEmbedder.name, refresh_s=0.0)
    assert store.current().name == good.active
    set_active(client, base, f"{base}__v20000101T000000000000")
    with pytest.raises(IndexPointerError):
        store.current()  # neither the version it had nor the legacy collection
    count, reason = index_check(store)
    assert count == 0 and reason.startswith("index pointer broken:") and "which is missing" in reason
    set_active(client, base, good.active)  # repaired: served again without a restart
    assert store.current().name == good.active and index_check(store)[0] > 0


def _broken_pointer_app(tmp_path):
    res = fake_resources(tmp_path)
    client, version = res.store._client, res.store.name
    set_active(client, "shop", version)
    res.store = VectorStore(client, "shop", HashEmbedder.name, refresh_s=0.0)
    set_active(client, "shop", "shop__v20000101T000000000000")
    set_resources(res)
    import server

    return server.create_app()


def test_ready_answers_503_with_the_pointer_reason_and_questions_get_503(tmp_path):
    with TestClient(_broken_pointer_app(tmp_path)) as c:
        r = c.get("/ready")
        asked = c.post("/rag/invoke", json={"input": {"question": "Wat kost de verzending?"}})
    assert r.status_code == 503
    assert r.json()["checks"]["index"].startswith("index pointer broken:")
    assert asked.status_code == 503 and "temporarily unavailable" in asked.json()["error"], asked.text
