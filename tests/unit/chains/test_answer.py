"""Run-on markup is cut from answers, in the graph and in the stream."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGenerationChunk

from chains import prompts
from chains.answer import clean_answer
from core.resources import set_resources
from core.settings import get_settings
from fakes import fake_resources
from graph.builder import graph
from graph.context import Context
from guards.output import OutputFilter, StreamGuard


def test_clean_answer_cuts_at_our_markup_and_new_question_turns():
    assert clean_answer('De bak is 9 liter.\n<document nr="6" titel="FAQ">\nVeel') == "De bak is 9 liter."
    assert clean_answer("Gratis vanaf €49.\nVraag: en naar België?") == "Gratis vanaf €49."
    assert clean_answer("It is free.\n</documenten>") == "It is free."
    assert clean_answer("Ja.\nAntwoord: Ja.\nAntwoord: Ja.") == "Ja."
    assert clean_answer("De vraag is: hoeveel liter? 9 liter.") == "De vraag is: hoeveel liter? 9 liter."


def test_stream_guard_never_releases_text_after_a_marker():
    guard = StreamGuard(OutputFilter(canary="KH-test", protected_texts=[]))
    answer = "De afvalbak van de PurrClean AutoBox 9 heeft een inhoud van 9 liter."
    words = answer.split(" ")
    tokens = [words[0], *(f" {w}" for w in words[1:]), "\n<docu", 'ment nr="2">', " Geheime tekst", " die nooit mag"]
    sent = "".join(guard.feed(t) for t in tokens)
    sent += guard.finish()
    assert sent.strip() == answer and guard.ended and not guard.blocked


QUOTED_SHIPPING = "Volgens Verzending en levering: Verzending kost 4,95 euro. Boven 49 euro is de verzending gratis."
SHIPPING = {"id": "verzending", "title": "Verzending en levering"}


@pytest.mark.parametrize("reply", ['<document nr="1" titel="Verzending">', "\nVraag: en naar België?"])
async def test_a_markup_only_answer_becomes_the_quoted_evidence(tmp_path, reply):
    set_resources(fake_resources(tmp_path, reply))
    out = await graph.ainvoke({"question": "Hoeveel kost de verzending?"})
    assert out["answer"] == QUOTED_SHIPPING and out["sources"] == [SHIPPING]
    assert out["mode"] == "extractive" and out["cut"] is False  # nothing failed: there was nothing to check


async def test_a_markup_only_answer_abstains_when_the_evidence_is_weak(tmp_path):
    set_resources(fake_resources(tmp_path, '<document nr="1" titel="Verzending">'))
    out = await graph.ainvoke({"question": "Hoeveel kost de verzending?"}, context=Context(min_evidence_score=5.0))
    assert out["answer"] == prompts.NO_CONTEXT_ANSWER_NL and out["sources"] == [] and out["mode"] == "abstained"


async def test_the_stream_narrows_the_sources_to_the_quoted_documents(tmp_path):
    from api.assistant import Assistant

    set_resources(fake_resources(tmp_path, '<document nr="1" titel="Verzending">'))
    chunks = [c async for c in Assistant().astream({"question": "Hoeveel kost de verzending?"})]
    sources = [c["sources"] for c in chunks if "sources" in c]
    assert len(sources) == 2 and SHIPPING in sources[0] and len(sources[0]) > 1  # the evidence's documents
    assert sources[-1] == [SHIPPING]  # after the text: only the quoted one
    assert [c["answer"] for c in chunks if "answer" in c] == [QUOTED_SHIPPING]  # one chunk, after the model ended
    assert chunks[-1] == {"refused": False, "language": "nl", "mode": "extractive", "cut": False}


class CountingLLM(GenericFakeChatModel):
    """A scripted LLM that counts the chunks its caller actually pulled from the stream."""

    pulled: int = 0

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in super()._astream(*args, **kwargs):
            self.pulled += 1
            yield chunk


async def test_generation_stops_at_run_on_markup_instead_of_reading_to_the_end(tmp_path):
    run_on = " ".join(f"woord{i}" for i in range(200))
    llm = CountingLLM(messages=iter([AIMessage(f'De afvalbak is 9 liter.\n<document nr="6" titel="FAQ">\n{run_on}')]))
    set_resources(dataclasses.replace(fake_resources(tmp_path), llm=llm))
    out = await graph.ainvoke({"question": "Hoeveel liter is de afvalbak?"})
    assert out["answer"] == "De afvalbak is 9 liter." and out["mode"] == "generated"
    assert out["cut"] is False  # the run-on is dropped, not failed: the answer before it is whole
    assert 0 < llm.pulled < 20, f"the stream is closed at the marker, not read to its end ({llm.pulled} chunks)"


async def test_without_the_cut_the_whole_stream_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("ANSWER_CUT_RUNON", "false")
    get_settings.cache_clear()
    try:
        text = 'Verzending kost 4,95 euro.\n<document nr="1"> ' + " ".join(f"w{i}" for i in range(50))
        llm = CountingLLM(messages=iter([AIMessage(text)]))
        set_resources(dataclasses.replace(fake_resources(tmp_path), llm=llm))
        out = await graph.ainvoke({"question": "Hoeveel kost de verzending?"})
        assert llm.pulled > 50, "without the cut the run-on is read on: no sentence failed before its end"
        # ... but it is still no answer: the markup check fails the run-on sentence, which ends the text there
        assert out["answer"] == "Verzending kost 4,95 euro." and "w49" not in out["answer"]
        assert out["mode"] == "generated" and out["cut"] is True
    finally:
        monkeypatch.delenv("ANSWER_CUT_RUNON")
        get_settings.cache_clear()
