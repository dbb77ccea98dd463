"""The answer-trust contract (issue #15) with scripted answers: what the shopper is shown, in invoke and stream.

The graph's ``check`` node keeps the model's sentences that an evidence line supports, up to the first one that
fails; when none passed it quotes the evidence (``extractive``), and with weak evidence it abstains. The API's
stream runs the same checks on the live tokens and releases only whole sentences that passed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from api.assistant import Assistant
from chains import prompts
from core import requestctx
from core.resources import set_resources
from fakes import SHIPPING_FREE, SHIPPING_PRICE, ScriptedChatModel, fake_resources, scripted_llm
from graph.builder import graph
from graph.context import Context

SHIPPING_Q = "Hoeveel kost de verzending?"
SHIPPING = {"id": "verzending", "title": "Verzending en levering"}
QUOTED_SHIPPING = f"Volgens Verzending en levering: {SHIPPING_PRICE} {SHIPPING_FREE}"
INVENTED_PHONE = "Bel ons op 020-1234567 voor hulp."


async def _ask(question: str, context: Context | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The graph's output and the request's audit record."""
    record: dict[str, Any] = {}
    token = requestctx.begin(record)
    try:
        out = await graph.ainvoke({"question": question}, context=context)
    finally:
        requestctx.end(token)
    return out, record


async def _stream(question: str) -> list[dict[str, Any]]:
    return [dict(c) async for c in Assistant().astream({"question": question})]


async def test_an_invented_price_is_not_shown_the_catalogue_line_is_quoted(tmp_path):
    set_resources(fake_resources(tmp_path, "Verzending kost 7,50 euro."))
    out, record = await _ask(SHIPPING_Q)
    assert out["answer"] == QUOTED_SHIPPING and "7,50" not in out["answer"]
    assert out["sources"] == [SHIPPING]
    assert out["mode"] == "extractive" and out["cut"] is True and out["refused"] is False
    assert record["check"] == {
        "passed": 0,
        "cut": True,
        "failed": {"stage": "claims", "reason": "unsupported_fact"},
    }


async def test_an_english_question_gets_the_quote_with_its_dutch_source_named(tmp_path):
    set_resources(fake_resources(tmp_path, "Shipping costs 7.50 euro."))
    out, _ = await _ask("How much is shipping?")
    assert out["mode"] == "extractive" and out["language"] == "en"
    assert out["answer"].startswith("According to ") and "(Dutch page): " in out["answer"]
    assert "7.50" not in out["answer"] and "7,50" not in out["answer"]
    assert out["sources"] and all(s["title"] + " (Dutch page): " in out["answer"] for s in out["sources"])


async def test_a_supported_answer_is_generated_and_cites_only_its_supporting_document(tmp_path):
    set_resources(fake_resources(tmp_path, f"{SHIPPING_PRICE} {SHIPPING_FREE}"))
    out, _ = await _ask("Wat kost verzending?")
    assert out["answer"] == f"{SHIPPING_PRICE} {SHIPPING_FREE}"
    assert out["mode"] == "generated" and out["cut"] is False and out["refused"] is False
    assert len({e["doc_id"] for e in out["evidence"]}) > 1, "the evidence held other documents too"
    assert out["sources"] == [SHIPPING]


async def test_a_second_sentence_with_an_invented_phone_number_is_cut(tmp_path):
    set_resources(fake_resources(tmp_path, f"{SHIPPING_PRICE} {INVENTED_PHONE} {SHIPPING_FREE}"))
    out, record = await _ask(SHIPPING_Q)
    assert out["answer"] == SHIPPING_PRICE  # nothing from the failing sentence on, not even a supported one
    assert out["mode"] == "generated" and out["cut"] is True and out["sources"] == [SHIPPING]
    assert record["check"]["passed"] == 1 and record["check"]["failed"]["stage"] == "claims"


@pytest.mark.parametrize(
    ("question", "answer"),
    [(SHIPPING_Q, prompts.NO_CONTEXT_ANSWER_NL), ("How much is shipping?", prompts.NO_CONTEXT_ANSWER_EN)],
)
async def test_without_evidence_it_abstains_without_calling_the_model(tmp_path, question, answer):
    set_resources(fake_resources(tmp_path))  # no answer scripted: a model call would raise
    weak = Context(min_evidence_score=5.0)  # above any line's score
    updates = [u async for u in graph.astream({"question": question}, stream_mode="updates", context=weak)]
    assert not any("generate" in u for u in updates), "the model is not asked without evidence"
    out, record = await _ask(question, weak)
    assert out["answer"] == answer and out["sources"] == [] and out["mode"] == "abstained"
    assert not out.get("cut") and out["refused"] is False
    assert record["mode"] == "abstained" and "check" not in record


async def test_a_question_the_evidence_does_not_speak_about_abstains_in_invoke_and_stream(tmp_path):
    set_resources(fake_resources(tmp_path))  # no answer scripted: a model call would raise
    question = "Is er een app om de voerbak te bedienen?"  # nothing in the catalogue speaks of one
    out, _ = await _ask(question)
    assert out["answer"] == prompts.NO_CONTEXT_ANSWER_NL and out["sources"] == [] and out["mode"] == "abstained"
    chunks = await _stream(question)
    assert [c["answer"] for c in chunks if "answer" in c] == [prompts.NO_CONTEXT_ANSWER_NL]
    assert all(c["sources"] == [] for c in chunks if "sources" in c)
    assert chunks[-1] == {"refused": False, "language": "nl", "mode": "abstained", "cut": False}


TWO_SUPPORTED = f"{SHIPPING_PRICE} {SHIPPING_FREE}"
CUT_AT_PHONE = f"{SHIPPING_PRICE} {INVENTED_PHONE} {SHIPPING_FREE}"


@pytest.mark.parametrize(
    ("text", "released", "mode", "cut"),
    [
        (TWO_SUPPORTED, [SHIPPING_PRICE, f" {SHIPPING_FREE}"], "generated", False),
        (CUT_AT_PHONE, [SHIPPING_PRICE], "generated", True),
        ("Verzending kost 7,50 euro. Boven 49 euro is de verzending gratis.", [], "extractive", True),
    ],
)
async def test_the_stream_releases_only_checked_sentences_and_matches_invoke(tmp_path, text, released, mode, cut):
    set_resources(fake_resources(tmp_path, text, text))
    out, _ = await _ask(SHIPPING_Q)
    chunks = await _stream(SHIPPING_Q)
    answers = [c["answer"] for c in chunks if "answer" in c]
    if mode == "generated":
        assert answers == released, "one chunk per passed sentence, nothing else of the model's text"
    else:
        assert answers == [out["answer"]] == [QUOTED_SHIPPING], "nothing of the model's text, then the quote"
    assert "".join(answers) == out["answer"]
    assert "020-1234567" not in json.dumps(chunks) and "7,50" not in json.dumps(chunks)
    assert not any(c.get("blocked") for c in chunks)
    sources = [c["sources"] for c in chunks if "sources" in c]
    assert SHIPPING in sources[0] and sources[-1] == out["sources"] == [SHIPPING]
    assert chunks[-1] == {"refused": False, "language": "nl", "mode": mode, "cut": cut}
    assert (out["mode"], out["cut"]) == (mode, cut)


@pytest.mark.parametrize("route", ["invoke", "stream"])
async def test_a_last_sentence_cut_by_the_token_limit_is_dropped(tmp_path, route):
    truncated = f"{SHIPPING_PRICE} Boven 49 euro is de"  # the model hit max_tokens mid-sentence
    reply = AIMessage(truncated, response_metadata={"finish_reason": "length"})
    res = fake_resources(tmp_path)
    res.llm = scripted_llm(reply)
    set_resources(res)
    if route == "invoke":
        out, record = await _ask(SHIPPING_Q)
        assert out["answer"] == SHIPPING_PRICE and out["mode"] == "generated"
        assert out["cut"] is False and record["check"] == {"passed": 1, "cut": False}
    else:
        chunks = await _stream(SHIPPING_Q)
        assert [c["answer"] for c in chunks if "answer" in c] == [SHIPPING_PRICE]
        assert chunks[-1] == {"refused": False, "language": "nl", "mode": "generated", "cut": False}


async def test_without_the_token_limit_the_last_sentence_is_checked_whole(tmp_path):
    res = fake_resources(tmp_path)
    res.llm = scripted_llm(AIMessage(f"{SHIPPING_PRICE} {SHIPPING_FREE}", response_metadata={"finish_reason": "stop"}))
    set_resources(res)
    out, _ = await _ask(SHIPPING_Q)
    assert out["answer"] == f"{SHIPPING_PRICE} {SHIPPING_FREE}" and out["mode"] == "generated"


async def test_the_audit_record_names_the_evidence_lines_and_the_mode(tmp_path):
    set_resources(fake_resources(tmp_path, SHIPPING_PRICE))
    out, record = await _ask(SHIPPING_Q)
    evidence = record["evidence"]
    assert evidence["lines"] == [f"{e['doc_id']}:{e['line']}" for e in out["evidence"]]
    assert evidence["lines"] and all(re.fullmatch(r"[a-z0-9-]+:\d+", x) for x in evidence["lines"])
    assert "verzending:0" in evidence["lines"]  # the line "Verzending kost 4,95 euro."
    assert evidence["top"] == round(out["evidence"][0]["score"], 4) and evidence["version"]
    assert record["mode"] == out["mode"] == "generated"
    assert record["check"] == {"passed": 1, "cut": False}
    assert "4,95" not in json.dumps(record), "the audit line records line ids, never the text"


DELIVERY_Q = "Hoe lang duurt de levering naar België?"
DELIVERY_LINE = "Levering binnen 1 tot 2 werkdagen in Nederland en België."
WITHOUT_DURATION = "Wij leveren in Nederland en België."


async def test_a_checked_answer_without_the_asked_duration_is_followed_by_the_line_that_holds_it(tmp_path):
    set_resources(fake_resources(tmp_path, WITHOUT_DURATION, WITHOUT_DURATION))
    out, record = await _ask(DELIVERY_Q)
    assert out["mode"] == "generated" and out["answer"].startswith(WITHOUT_DURATION)
    assert "1 tot 2 werkdagen" in out["answer"] and "Volgens Verzending en levering: " in out["answer"]
    assert record["check"]["incomplete"] is True and SHIPPING in out["sources"]
    chunks = await _stream(DELIVERY_Q)
    assert "".join(c["answer"] for c in chunks if "answer" in c) == out["answer"], "the stream sends the same text"
    assert chunks[-1]["mode"] == "generated" and not any(c.get("blocked") for c in chunks)


async def test_a_checked_answer_that_holds_the_asked_value_gets_no_quote(tmp_path):
    set_resources(fake_resources(tmp_path, DELIVERY_LINE))
    out, record = await _ask(DELIVERY_Q)
    assert out["answer"] == DELIVERY_LINE and out["mode"] == "generated"
    assert "incomplete" not in record["check"] and not out.get("quote")


class _FailsMidStream(ScriptedChatModel):
    """Streams its scripted answer up to ``after`` characters, then the backend fails."""

    after: int = 0

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[override]
        import httpx
        import openai

        sent = 0
        for chunk in self._stream(messages, stop=stop, **kwargs):
            if sent >= self.after:
                raise openai.APIConnectionError(request=httpx.Request("POST", "http://llm"))
            sent += len(str(chunk.message.content))
            yield chunk


@pytest.mark.parametrize(
    ("after", "answer", "mode"),
    [
        (0, QUOTED_SHIPPING, "extractive"),  # nothing generated: the evidence is quoted
        (len(SHIPPING_PRICE) + 3, SHIPPING_PRICE, "generated"),  # a checked sentence stands, the rest is dropped
    ],
)
async def test_a_backend_failure_keeps_the_checked_sentences_or_quotes_the_evidence(tmp_path, after, answer, mode):
    text = f"{SHIPPING_PRICE} {SHIPPING_FREE}"
    res = fake_resources(tmp_path)
    res.llm = _FailsMidStream(messages=iter([AIMessage(content=text)] * 2), after=after)
    set_resources(res)
    out, record = await _ask(SHIPPING_Q)
    assert out["answer"] == answer and out["mode"] == mode and out["refused"] is False
    assert record["llm_error"] == "APIConnectionError" and record["generation_failed"] is True
    chunks = await _stream(SHIPPING_Q)
    assert not any("error" in c for c in chunks)
    assert "".join(c.get("answer", "") for c in chunks) == answer
    assert chunks[-1]["mode"] == mode
