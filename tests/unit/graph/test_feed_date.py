"""Answers about price or stock from the product feed end with the feed's date: invoke and stream."""

from __future__ import annotations

import json

from api.assistant import Assistant
from core.reranker import LexicalReranker
from core.resources import Resources, set_resources
from fakes import CATALOGUE, HashEmbedder, fake_classifier, fake_llm, fake_resources, write_catalogue
from graph.builder import graph

FEED = {
    "feed_date": "2026-11-26",
    "products": [
        {
            "id": "feedwise-smart-4",
            "title": "FeedWise Smart 4 voerautomaat",
            "doc_type": "product",
            "price_eur": 89.95,
            "stock": 12,
            "description": "Voerautomaat FeedWise Smart 4 voor vier maaltijden per dag.",
        }
    ],
}
NOTE = "(Prijs en voorraad volgens onze productfeed van 26-11-2026.)"


def resources(tmp_path, *answers: str) -> Resources:
    return fake_resources(tmp_path, *answers, docs={**CATALOGUE, "feeds/products.json": json.dumps(FEED)})


async def test_price_answer_from_the_feed_names_the_feed_date(tmp_path):
    set_resources(resources(tmp_path, "De FeedWise Smart 4 kost € 89,95."))
    out = await graph.ainvoke({"question": "Wat kost de FeedWise Smart 4 voerautomaat?"})
    assert out["answer"] == f"De FeedWise Smart 4 kost € 89,95. {NOTE}"
    assert out["sources"][0]["id"] == "feedwise-smart-4"


async def test_the_stream_sends_the_note_last(tmp_path):
    set_resources(resources(tmp_path, "De FeedWise Smart 4 kost € 89,95."))
    chunks = [c async for c in Assistant().astream({"question": "Wat kost de FeedWise Smart 4 voerautomaat?"})]
    text = "".join(c.get("answer", "") for c in chunks)
    assert text == f"De FeedWise Smart 4 kost € 89,95. {NOTE}"


async def test_no_note_for_a_policy_question(tmp_path):
    set_resources(resources(tmp_path, "Verzending kost 4,95 euro."))
    out = await graph.ainvoke({"question": "Hoe lang heb ik om te retourneren?"})
    assert NOTE not in out["answer"]


async def test_a_reingest_reaches_the_running_graph_dense_and_bm25(tmp_path):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from core.lexical import LexicalIndex
    from core.vectorstore import VectorStore
    from ingest.publish import publish

    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True))
    root = write_catalogue(tmp_path / "catalogue", {**CATALOGUE, "feeds/products.json": json.dumps(FEED)})
    embedder = HashEmbedder()
    publish(root, client, "live-cat", embedder, chunk_tokens=200, overlap_tokens=20)
    store = VectorStore(client, "live-cat", embedder.name, refresh_s=0.0)
    lexical = LexicalIndex.from_store(store)
    stale = "De FeedWise Smart 4 kost € 89,95."
    res = Resources(
        embedder=embedder,
        reranker=LexicalReranker(),
        store=store,
        llm=fake_llm(stale, stale),  # the model says the old price twice: only the first time is it true
        classifier=fake_classifier(embedder),
        lexical=lexical,
    )
    set_resources(res)
    question = {"question": "Wat kost de FeedWise Smart 4 voerautomaat?"}
    before = await run(question)
    newer = {**FEED, "feed_date": "2026-11-27"}
    newer["products"] = [{**FEED["products"][0], "price_eur": 79.95}]
    (root / "feeds" / "products.json").write_text(json.dumps(newer), encoding="utf-8")
    done = publish(root, client, "live-cat", embedder, chunk_tokens=200, overlap_tokens=20)
    after = await run(question)
    assert "89,95" in before["text"] and "79,95" not in before["text"]
    assert "89,95" in before["evidence"] and "79,95" not in before["evidence"]
    assert before["answer"] == f"{stale} {NOTE}" and before["mode"] == "generated"
    assert "79,95" in after["text"] and "89,95" not in after["text"]
    assert "79,95" in after["evidence"] and "89,95" not in after["evidence"]  # the lines follow the switch too
    # the old price no longer passes the claim check: the new evidence is quoted, with the new feed date
    assert after["mode"] == "extractive" and "89,95" not in after["answer"], after
    assert after["answer"].endswith("(Prijs en voorraad volgens onze productfeed van 27-11-2026.)")
    assert "79,95" in after["answer"], after
    assert store.name == done.active
    assert {h.text for h in lexical.search("FeedWise Smart 4", 1)} == {after["text"]}  # BM25 follows the switch


async def run(question: dict) -> dict:
    """The checked answer and its mode, and the text of the FeedWise chunk and evidence lines the prompt got."""
    updates = [u async for u in graph.astream(question, stream_mode="updates")]
    chunks = next(u["rerank"]["chunks"] for u in updates if "rerank" in u)
    lines = next(u["evidence"]["evidence"] for u in updates if "evidence" in u)
    checked = next(u["check"] for u in updates if "check" in u)
    return {
        "answer": checked["answer"],
        "mode": checked["mode"],
        "text": " ".join(c["text"] for c in chunks if c["doc_id"] == "feedwise-smart-4"),
        "evidence": " ".join(e["text"] for e in lines if e["doc_id"] == "feedwise-smart-4"),
    }
