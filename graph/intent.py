"""The scope step's second half: what a message that is not an attack wants (``guards.intent``).

A service request (account, payment, complaint, privacy, one's own order) gets the customer-service route with the
contact details of the shop's customer-service page; an off-topic message gets the short text saying what the
assistant helps with; neither calls the LLM or counts as a strike. A message that mixes a request with a shop
question ("my parcel is late, and do you ship to Belgium?") is answered, with the route appended as a note.
The model reuses the guard's query vector; only a routed message of several clauses embeds its clauses (one batch)
to find a shop question among them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Literal

import numpy as np

from chains.service import CUSTOMER_SERVICE_DOC, Contact, off_topic_answer, route_note, service_answer
from core import requestctx
from core.batching import batchers
from core.resources import Resources
from guards.intent import MIXED_QUESTION_MIN, MIXED_SERVICE_MIN, IntentVerdict

logger = logging.getLogger(__name__)

MIN_CLAUSE_WORDS = 3
# Clause boundaries: sentence ends, and a comma, dash or semicolon before "and/but/also" or a question word.
_CLAUSES = re.compile(
    r"(?<=[.?!])\s+|\s*[;—–]\s*|,\s*(?=(?:en|maar|ook|and|but|also|btw|trouwens|wat|hoe|hoeveel|welke|waar|wanneer|"
    r"kan|kunnen|heb|hebben|is|zijn|what|how|which|where|when|can|do|does|is|are)\b)",
    re.IGNORECASE,
)
_CONTACTS: dict[str, Contact] = {}  # per index version


def clauses(message: str) -> list[str]:
    """The parts of a message that could each be a request or a question (at least ``MIN_CLAUSE_WORDS`` words)."""
    parts = [p.strip(" ,") for p in _CLAUSES.split(message) if p and p.strip(" ,")]
    return [p for p in parts if len(p.split()) >= MIN_CLAUSE_WORDS]


def contact(res: Resources) -> Contact:
    """The customer-service channels of the index version in use (blocking: call in a thread)."""
    col = res.store.current()
    version = str(col.name)
    if version not in _CONTACTS:
        res.lines.refresh(res.store, col)
        _CONTACTS.clear()
        _CONTACTS[version] = Contact.from_text(line.text for line in res.lines.lines_of(CUSTOMER_SERVICE_DOC))
        if not _CONTACTS[version].email and not _CONTACTS[version].phone:
            logger.warning("no contact details on the customer-service page %r of %s", CUSTOMER_SERVICE_DOC, version)
    return _CONTACTS[version]


async def shop_part(res: Resources, message: str, whole: IntentVerdict) -> tuple[str, list[float]] | None:
    """The shop question of a message that also holds a service request, and its vector; None when not mixed.

    The clauses are embedded in one batch; the shop question is the clauses that are questions (its vector when it
    is one clause; otherwise retrieval embeds the joined text).
    """
    assert res.intent is not None
    parts = clauses(message)
    if len(parts) < 2:
        return None
    vectors = np.asarray(await batchers(res).embed_queries(parts))
    probs = res.intent.probabilities(vectors)
    asks = [i for i, p in enumerate(probs) if p[0] >= MIXED_QUESTION_MIN]
    requests = whole.intent == "service" or any(res.intent.decide(p).intent == "service" for p in probs)
    if not asks or not requests or len(asks) == len(parts):
        return None
    if len(asks) == 1:
        return parts[asks[0]], [float(x) for x in vectors[asks[0]]]
    return " ".join(parts[i] for i in asks), []


def _unread_follow_up(state: Any) -> bool:
    """A turn of a conversation whose rewrite did not succeed: "En hoeveel kost die?" alone looks off-topic."""
    return bool(state.get("history")) and state.get("original_question", state["question"]) == state["question"]


def _record(verdict: IntentVerdict, outcome: str) -> None:
    requestctx.annotate(
        routed={"outcome": outcome, "reason": verdict.reason, "by": "classifier", "score": round(verdict.score, 4)}
    )


async def route(res: Resources, state: Any) -> dict[str, Any] | None:
    """The scope update for a routed or mixed message; None for a shop question (or without an intent model)."""
    vector = state.get("query_vector")
    if res.intent is None or not vector:
        return None
    verdict = res.intent.classify(np.asarray(vector, dtype=np.float32))
    language: Literal["nl", "en"] = "en" if state.get("language") == "en" else "nl"
    if verdict.intent == "off_topic" and _unread_follow_up(state):
        verdict = IntentVerdict(
            intent="question", reason=None, score=verdict.score, probabilities=verdict.probabilities
        )
    if verdict.intent == "off_topic":
        _record(verdict, "off_topic")
        requestctx.annotate(mode="off_topic")
        return {"scope": "off_topic", "answer": off_topic_answer(language), "sources": [], "mode": "off_topic"}
    if verdict.intent == "question" and verdict.service < MIXED_SERVICE_MIN:
        return None
    shop = await shop_part(res, state["question"], verdict)
    if shop is not None:  # answer the shop question only, and add the route for the rest
        _record(verdict, "mixed")
        contact_of = await asyncio.to_thread(contact, res)  # built once per index version
        question, vector = shop
        note = route_note(contact_of, language)
        return {"scope": "catalogue", "route_note": note, "question": question, "query_vector": vector}
    if verdict.intent == "question":
        return None
    outcome = "order" if verdict.reason == "order" else "service"
    _record(verdict, outcome)
    requestctx.annotate(mode=outcome)
    contact_of = await asyncio.to_thread(contact, res)
    answer = service_answer(verdict.reason or "account", contact_of, language)
    return {"scope": outcome, "answer": answer, "sources": [], "mode": outcome}
