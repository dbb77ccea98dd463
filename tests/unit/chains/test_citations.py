"""Answers cite the context documents they rest on (post-hoc attribution), in the graph and in the stream."""

from __future__ import annotations

from chains.citations import attributed, content_terms
from core.resources import set_resources
from fakes import fake_resources
from graph.builder import graph

CHUNKS = [
    {"doc_id": "purrclean", "title": "PurrClean AutoBox 9", "text": "Zelfreinigende kattenbak, afvalbak 9 liter."},
    {"doc_id": "onderhoud", "title": "Kattenbak onderhoud", "text": "Leeg de afvalbak elke week en spoel hem om."},
    {"doc_id": "purrclean", "title": "PurrClean AutoBox 9", "text": "Prijs €249,00. Garantie 2 jaar."},
    {"doc_id": "verzending", "title": "Verzending", "text": "Gratis verzending vanaf €49 binnen Nederland."},
]
SOURCES = [{"id": d, "title": d} for d in ("purrclean", "onderhoud", "verzending")]


def test_content_terms_keep_numbers_and_names_and_drop_stop_words():
    assert content_terms("De AutoBox 9 kost €249,00 en is er in 2 kleuren.") == {
        "autobox", "9", "kost", "249.00", "kleuren", "2",
    }  # fmt: skip


def test_the_documents_the_answer_rests_on_are_cited_in_retrieval_order():
    one = attributed("De afvalbak van de PurrClean AutoBox 9 is 9 liter.", CHUNKS, SOURCES)
    assert one == ([SOURCES[0]], True)
    both = attributed("Gratis verzending vanaf €49; de AutoBox 9 kost €249,00.", CHUNKS, SOURCES)
    assert both == ([SOURCES[0], SOURCES[2]], True)


def test_an_answer_from_outside_the_context_is_not_grounded():
    assert attributed("Goudvissen houden van aquariums.", CHUNKS, SOURCES) == ([], False)
    assert attributed("</form>//[\"'`-->]]>]</div>", CHUNKS, SOURCES) == ([], False)  # an echoed payload


def test_support_outside_the_citable_documents_does_not_count():
    assert attributed("Gratis verzending vanaf €49.", CHUNKS, SOURCES[:2]) == ([], False)


def test_an_answer_without_content_terms_cannot_be_attributed_and_keeps_its_sources():
    assert attributed("Ja.", CHUNKS, SOURCES) == (SOURCES, True)
    assert attributed("", CHUNKS, SOURCES) == (SOURCES, True)


async def test_the_graph_cites_only_the_supporting_document(tmp_path):
    set_resources(fake_resources(tmp_path, "Verzending is gratis vanaf €49."))
    out = await graph.ainvoke({"question": "Hoeveel kost de verzending?"})
    assert [s["id"] for s in out["sources"]] == ["verzending"]


async def test_the_stream_sends_the_narrowed_sources_at_the_end(tmp_path):
    from api.assistant import Assistant

    set_resources(fake_resources(tmp_path, "Verzending is gratis vanaf €49."))
    chunks = [c async for c in Assistant().astream({"question": "Hoeveel kost de verzending?"})]
    sources = [c["sources"] for c in chunks if "sources" in c]
    assert len(sources[0]) > 1, "the context's documents first"
    assert [s["id"] for s in sources[-1]] == ["verzending"], "then only the one the answer rests on"


async def test_an_ungrounded_answer_keeps_the_context_sources_and_is_audited(tmp_path):
    from core import requestctx

    set_resources(fake_resources(tmp_path, "Goudvissen houden van grote aquariums met planten."))
    record: dict = {}
    token = requestctx.begin(record)
    try:
        out = await graph.ainvoke({"question": "Hoeveel kost de verzending?"})
    finally:
        requestctx.end(token)
    assert out["answer"].startswith("Goudvissen") and len(out["sources"]) > 1
    assert record.get("ungrounded_answer") is True
