"""Safe publishing (issue #17): a bad ingest is refused before the pointer moves; the last good index stays served."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from core.index_versions import active_name, read_publish_status, versions
from core.vectorstore import VectorStore
from fakes import CATALOGUE, HashEmbedder, write_catalogue
from ingest.publish import publish

KW = {"chunk_tokens": 200, "overlap_tokens": 20}
QUERY = "Kattenvoer droogvoer prijs"


def feed(price: float, n: int = 6) -> str:
    """The daily product feed: ``n`` products that all carry ``price``."""
    products = [
        {"id": f"voer-{i:02d}", "title": f"Kattenvoer {i}", "doc_type": "product", "price_eur": price,
         "description": f"Droogvoer nummer {i}."}
        for i in range(n)
    ]  # fmt: skip
    return json.dumps({"feed_date": "2026-12-07", "products": products})


def served_prices(client, base) -> set[str]:
    """The feed prices a reader of ``base`` finds now."""
    store = VectorStore(client, base, HashEmbedder.name)
    texts = [h.text for h in store.search(HashEmbedder().embed_queries([QUERY])[0], 30)]
    return {p for p in ("10,00", "12,50") if any(p in t for t in texts)}


@pytest.fixture
def shop(tmp_path, client, base):
    """A catalogue with the feed at € 10, published once."""
    root = write_catalogue(tmp_path / "c", {**CATALOGUE, "feeds/products.json": feed(10.0)})
    first = publish(root, client, base, HashEmbedder(), **KW)
    assert first.switched and served_prices(client, base) == {"10,00"}
    return root, first.active


def test_a_malformed_feed_is_not_published_and_the_old_prices_stay(shop, client, base):
    root, before = shop
    good = feed(12.5)
    (root / "feeds/products.json").write_text(good[: len(good) // 2], encoding="utf-8")  # cut off mid-upload
    (root / "policies/verzending.md").write_text("---\nid: verzending\ntitle: V\n---\nGratis verzending.\n")
    done = publish(root, client, base, HashEmbedder(), **KW)
    assert not done.switched and done.refused is not None and done.refused.reasons == ("failed_files",)
    assert done.refused.files == (str(root / "feeds/products.json"),)
    assert "feeds/products.json" in done.refused.message and "invalid JSON" in done.refused.message
    assert active_name(client, base) == before == done.active and versions(client, base) == [before]
    assert served_prices(client, base) == {"10,00"}  # nothing of the feed deleted, the other change not applied
    status = read_publish_status(client, base)
    assert status and status["last_outcome"] == "refused" and status["last_reasons"] == "failed_files"


def test_a_new_file_that_fails_is_only_reported(shop, client, base):
    root, _ = shop
    (root / "policies/nieuw.md").write_text("---\nid: nieuw\ntitle: [unclosed\n---\nTekst.\n", encoding="utf-8")
    (root / "feeds/products.json").write_text(feed(12.5), encoding="utf-8")
    done = publish(root, client, base, HashEmbedder(), **KW)
    assert done.switched and done.refused is None and list(done.report.failed) == [str(root / "policies/nieuw.md")]
    assert served_prices(client, base) == {"12,50"}


@pytest.mark.parametrize("unmounted", [False, True], ids=["empty-folder", "only-a-readme"])
def test_an_empty_catalogue_folder_is_not_published(shop, client, base, unmounted):
    root, before = shop
    for path in sorted(root.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    if unmounted:  # a mount point whose volume is missing: the folder exists, holds nothing to index
        (root / "README.md").write_text("mount the catalogue here\n", encoding="utf-8")
    done = publish(root, client, base, HashEmbedder(), **KW)
    assert done.refused is not None and done.refused.reasons == ("empty",) and "no chunks" in done.refused.message
    assert active_name(client, base) == before and served_prices(client, base) == {"10,00"}


def test_an_empty_folder_is_not_the_first_version_either(tmp_path, client, base):
    (tmp_path / "empty").mkdir()
    done = publish(tmp_path / "empty", client, base, HashEmbedder(), **KW)
    assert done.refused is not None and done.refused.reasons == ("empty",) and not versions(client, base)


def test_a_big_deletion_is_refused_and_published_with_the_override(shop, client, base):
    root, before = shop
    (root / "feeds/products.json").write_text(feed(10.0, n=1), encoding="utf-8")  # 5 of 10 documents gone
    (root / "products/cave40.md").unlink()  # 6 of 10: above the default share of 50 %
    done = publish(root, client, base, HashEmbedder(), **KW)
    assert done.refused is not None and done.refused.reasons == ("deletions",)
    assert "delete 6 of 10 documents (60% > INGEST_MAX_DELETE_SHARE 50%)" in done.refused.message
    assert "catcave-classic-40" in done.refused.message and "--allow-deletions" in done.refused.message
    assert active_name(client, base) == before
    assert publish(root, client, base, HashEmbedder(), **KW, max_delete_share=0.6).switched  # the setting
    (root / "products/autobox.md").unlink()
    done = publish(root, client, base, HashEmbedder(), **KW, allow_deletions=True)
    assert done.switched and done.refused is None and done.report.deleted == ["purrclean-autobox-9"]


def test_a_refusal_is_exported_from_the_index_and_cleared_by_a_good_ingest(shop, client, base):
    root, _ = shop
    VectorStore(client, base, HashEmbedder.name)  # the service's store: the source of the exported status

    def sample(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(f"shop_assistant_ingest_{name}", labels)

    assert sample("last_publish_refused", reason="failed_files") == 0.0
    assert sample("publish_refused_total") == 0.0
    (root / "feeds/products.json").write_text("{not json", encoding="utf-8")
    publish(root, client, base, HashEmbedder(), **KW)
    publish(root, client, base, HashEmbedder(), **KW)
    assert sample("last_publish_refused", reason="failed_files") == 1.0
    assert sample("last_publish_refused", reason="deletions") == 0.0
    assert sample("publish_refused_total") == 2.0
    good_since = sample("last_success_timestamp_seconds")
    (root / "feeds/products.json").write_text(feed(10.0), encoding="utf-8")  # fixed: as published, nothing to do
    assert not publish(root, client, base, HashEmbedder(), **KW).switched
    assert sample("last_publish_refused", reason="failed_files") == 0.0 and sample("publish_refused_total") == 2.0
    assert (sample("last_success_timestamp_seconds") or 0) > (good_since or 0)


def test_a_feed_that_breaks_after_the_first_check_is_refused_before_the_switch(shop, client, base, monkeypatch):
    import ingest.publish as pub

    root, before = shop
    (root / "feeds/products.json").write_text(feed(12.5), encoding="utf-8")
    snapshot = pub.load_documents(root, pub.IngestReport())  # what the first check saw: a good feed
    monkeypatch.setattr(pub, "load_documents", lambda _root, _report: snapshot)
    (root / "feeds/products.json").write_text('{"products": [', encoding="utf-8")  # then rewritten, cut off
    done = publish(root, client, base, HashEmbedder(), **KW)
    assert done.refused is not None and done.refused.reasons == ("failed_files",)
    assert active_name(client, base) == before and versions(client, base) == [before]  # the new copy is dropped
    assert served_prices(client, base) == {"10,00"}
