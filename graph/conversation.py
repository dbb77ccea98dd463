"""The conversational layer of the graph: history in the state, follow-up rewriting, remembering a turn.

``ConversationState`` keeps only ``history`` in checkpoints: every other channel is an
``UntrackedValue`` (never stored), so raw questions, retrieved chunks and vectors stay in memory.
History entries are plain dicts, redacted (``guards.redact``) and trimmed to
``HISTORY_MAX_TOKENS`` before they are stored.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from typing import Annotated, Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.channels.untracked_value import UntrackedValue
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from chains import prompts
from core import requestctx
from core.metrics import QUESTION_REWRITES
from core.resources import get_resources
from core.settings import get_settings
from graph.context import Context
from graph.gates import classify
from graph.state import Evidence, Source
from guards.classifier import ClassifierUnavailableError
from guards.input import check_question
from guards.redact import redact

logger = logging.getLogger(__name__)

Turn = dict[str, Any]
_LABEL = re.compile(r"^\s*(?:antwoord|answer|vraag|question|zelfstandige vraag|standalone question)\s*:\s*", re.I)


class ConversationInput(TypedDict, total=False):
    """What the chat endpoint sends: the question and the id the answer will carry."""

    question: str
    turn_id: str


class ConversationState(TypedDict, total=False):
    """``State`` for a conversation: only ``history`` is checkpointed."""

    question: Annotated[str, UntrackedValue]
    answer: Annotated[str, UntrackedValue]
    sources: Annotated[list[Source], UntrackedValue]
    refused: Annotated[bool, UntrackedValue]
    language: Annotated[str, UntrackedValue]
    queries: Annotated[list[str], UntrackedValue]
    candidates: Annotated[list[dict[str, Any]], UntrackedValue]
    chunks: Annotated[list[dict[str, Any]], UntrackedValue]
    messages: Annotated[list[BaseMessage], UntrackedValue]
    guard_reasons: Annotated[list[str], UntrackedValue]
    query_vector: Annotated[list[float], UntrackedValue]
    quote: Annotated[str, UntrackedValue]
    feed_note: Annotated[str, UntrackedValue]
    route_note: Annotated[str, UntrackedValue]
    draft: Annotated[str, UntrackedValue]
    truncated: Annotated[bool, UntrackedValue]
    cut: Annotated[bool, UntrackedValue]
    mode: Annotated[str, UntrackedValue]
    evidence: Annotated[list[Evidence], UntrackedValue]
    scope: Annotated[str, UntrackedValue]
    turn_id: Annotated[str, UntrackedValue]
    original_question: Annotated[str, UntrackedValue]
    history: list[Turn]


def approx_tokens(text: str) -> int:
    """Rough token count (about four characters per token, like LangChain's approximate counter)."""
    return max(1, math.ceil(len(text) / 4))


def trim_history(history: list[Turn], budget: int) -> list[Turn]:
    """The most recent whole turns (a question with its answer) whose text fits in ``budget`` tokens."""
    turns: list[list[Turn]] = []
    for entry in history:
        if entry.get("role") == "assistant" and turns and turns[-1][-1].get("role") == "user":
            turns[-1].append(entry)
        else:
            turns.append([entry])
    kept: list[list[Turn]] = []
    used = 0
    for turn in reversed(turns):
        cost = sum(approx_tokens(str(e.get("standalone") or e.get("content") or "")) for e in turn)
        if used + cost > budget:
            break
        kept.append(turn)
        used += cost
    return [entry for turn in reversed(kept) for entry in turn]


def _transcript(history: list[Turn], english: bool) -> str:
    customer, assistant = prompts.REWRITE_SPEAKERS_EN if english else prompts.REWRITE_SPEAKERS_NL
    lines = []
    for entry in history:
        if entry.get("refused"):
            continue
        who = customer if entry.get("role") == "user" else assistant
        text = " ".join(str(entry.get("standalone") or entry.get("content") or "").split())
        lines.append(f"{who}: {text}")
    return "\n".join(lines)


def _clean(text: str) -> str:
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    return _LABEL.sub("", line).strip().strip("\"'“”").strip()


async def _standalone(question: str, transcript: str, english: bool) -> str:
    settings = get_settings()
    system = prompts.REWRITE_SYSTEM_EN if english else prompts.REWRITE_SYSTEM_NL
    user = (prompts.REWRITE_USER_EN if english else prompts.REWRITE_USER_NL).format(
        history=transcript, question=question
    )
    llm = get_resources().llm.bind(max_tokens=settings.rewrite_max_tokens, stop=["\n"])
    message = await asyncio.wait_for(
        llm.ainvoke([SystemMessage(system), HumanMessage(user)], config={"tags": [TAG_NOSTREAM]}),
        settings.rewrite_timeout_s,
    )
    return _clean(str(message.content))


async def rewrite(state: ConversationState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Turn a follow-up ("En in het zwart?") into a standalone question; the raw question on any doubt."""
    question = state["question"]
    transcript = _transcript(state.get("history") or [], state.get("language") == "en")
    if not transcript:
        return {"original_question": question}
    t0 = time.perf_counter()
    outcome, vector = "ok", state.get("query_vector") or []
    try:
        candidate = await _standalone(question, transcript, state.get("language") == "en")
        limit = min(get_settings().max_question_chars, 4 * len(question) + 300)
        if not candidate:
            outcome = "empty"
        elif len(candidate) > limit:
            outcome = "too_long"
        elif (verdict := check_question(candidate, limit)).reasons:
            outcome = "rejected"
        else:  # the rewrite is screened like the question itself, and its vector is reused by retrieval
            candidate = verdict.question
            flagged, _score, vector = await asyncio.wait_for(
                classify(get_resources(), candidate), get_settings().guard_timeout_s
            )
            outcome = "rejected" if flagged else "ok"
    except TimeoutError:
        outcome = "timeout"
    except ClassifierUnavailableError:
        outcome = "rejected"
    except Exception as exc:  # the LLM failed: answer the raw question instead of failing the turn
        logger.warning("follow-up rewrite failed: %s", type(exc).__name__)
        outcome = "error"
    QUESTION_REWRITES.labels(outcome=outcome).inc()
    record: dict[str, Any] = {"status": outcome, "ms": round((time.perf_counter() - t0) * 1000, 1)}
    if outcome != "ok":
        requestctx.annotate(rewrite=record)
        return {"original_question": question}
    requestctx.annotate(rewrite={**record, "question": redact(candidate)})
    return {"question": candidate, "query_vector": vector, "original_question": question}


async def remember(state: ConversationState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Append this turn (redacted) to the history and trim it to the token budget."""
    turn_id = state.get("turn_id") or uuid.uuid4().hex
    history = list(state.get("history") or [])
    answer = redact(state.get("answer") or "")
    if state.get("refused"):  # refused turns keep only the fixed refusal: never the text that was refused
        history.append({"role": "assistant", "id": turn_id, "content": answer, "refused": True})
    else:
        original = state.get("original_question") or state["question"]
        user: Turn = {"role": "user", "content": redact(original)}
        if state["question"] != original:
            user["standalone"] = redact(state["question"])
        sources = [s["id"] for s in state.get("sources") or []]
        history += [user, {"role": "assistant", "id": turn_id, "content": answer, "sources": sources}]
    return {"history": trim_history(history, get_settings().history_max_tokens)}
