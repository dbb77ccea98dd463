"""Query expansion by the LLM: variants feed retrieval; slow, failing or junk replies fall back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from chains.llm_expansion import parse_variants, variants
from core import requestctx
from core.resources import set_resources
from core.settings import get_settings
from fakes import fake_resources
from graph.builder import graph

QUESTION = "Hoeveel liter is de afvalbak?"


def test_parse_drops_bullets_repeats_and_junk():
    text = "1. Wat is de inhoud van de afvalbak?\n- Hoeveel liter is de afvalbak?\n<script>x</script>\n\nok\n"
    text += '"Hoe groot is de afvalbak?"\n* Volume van de afvalbak\nNog een vraag hier'
    assert parse_variants(text, QUESTION, 3) == [
        "Wat is de inhoud van de afvalbak?",
        "Hoe groot is de afvalbak?",
        "Volume van de afvalbak",
    ]


class Slow(GenericFakeChatModel):
    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)
        raise AssertionError("unreachable")


class Broken(GenericFakeChatModel):
    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("LLM down")


@pytest.mark.parametrize(
    ("llm", "outcome"),
    [
        (Slow(messages=iter([])), "timeout"),
        (Broken(messages=iter([])), "error"),
        (GenericFakeChatModel(messages=iter([AIMessage("<html>{}</html>")])), "junk"),
        (GenericFakeChatModel(messages=iter([AIMessage("Wat is de inhoud?\nHoe groot is de bak?")])), "ok"),
    ],
)
async def test_variants_fall_back_instead_of_failing(llm, outcome):
    found, got = await variants(llm, QUESTION, "nl", n=3, timeout_s=0.2, max_tokens=32)
    assert got == outcome
    assert bool(found) == (outcome == "ok")


async def test_llm_variants_reach_retrieval_and_the_audit_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPANSION_PROVIDER", "llm")
    get_settings.cache_clear()
    expansion = "Wat is de inhoud van de afvalbak?\nHoe vaak moet de afvalbak geleegd worden?"
    set_resources(fake_resources(tmp_path, expansion, "De afvalbak is 9 liter."))
    record: dict = {}
    token = requestctx.begin(record)
    try:
        updates = [u async for u in graph.astream({"question": QUESTION}, stream_mode="updates")]
    finally:
        requestctx.end(token)
    queries = next(u["expand"]["queries"] for u in updates if "expand" in u)
    assert queries[0] == QUESTION
    assert "Wat is de inhoud van de afvalbak?" in queries and "Hoe vaak moet de afvalbak geleegd worden?" in queries
    assert record["expansion"] == {"variants": 2, "outcome": "ok"}
    assert next(u["generate"]["draft"] for u in updates if "generate" in u) == "De afvalbak is 9 liter."
    checked = next(u["check"] for u in updates if "check" in u)
    assert checked["answer"] == "De afvalbak is 9 liter." and checked["mode"] == "generated"
