"""The answer-trust nodes: ``evidence`` (the lines the model may use) and ``check`` (what it may say).

``evidence`` runs after rerank: of the retrieved documents it selects the few lines that answer the question
(``core.evidence.LineIndex``: line vectors computed at ingest, one dot product per line). ``check`` runs between
generate and the output filter: the model's sentences go through ``guards.stream.SentenceStream`` (markup,
claims, leaks); the passed ones are the answer (``generated``). When none passed, the best lines are quoted
(``extractive``); when the evidence is weak, the assistant abstains with the route to customer service.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from chains import prompts
from chains.claims import CatalogueNames, ClaimChecker
from chains.coverage import question_coverage
from chains.extractive import extractive_answer
from core import requestctx
from core.batching import batchers
from core.degrade import skip_under_load
from core.evidence import EvidenceLine
from core.resources import Resources, get_resources
from core.settings import get_settings
from graph.context import Context
from graph.nodes import _bounded, _ctx
from graph.state import Evidence, Source, State
from graph.timing import timed
from guards.stream import SentenceStream, sentence_stream

logger = logging.getLogger(__name__)

_CHECKERS: dict[tuple[int, str, float], ClaimChecker] = {}  # per line index, index version and threshold


def evidence_lines(state: Any) -> list[EvidenceLine]:
    """The state's evidence as ``EvidenceLine`` objects."""
    return [EvidenceLine(**e) for e in state.get("evidence") or []]


def claim_checker(res: Resources, min_support: float) -> ClaimChecker:
    """One checker per index version (its catalogue names) and threshold, shared by the graph and the stream."""
    key = (id(res.lines), res.lines.version, min_support)
    if key not in _CHECKERS:
        if len(_CHECKERS) > 8:
            _CHECKERS.clear()
        names = CatalogueNames(res.lines.products(), res.lines.brands())
        _CHECKERS[key] = ClaimChecker(min_support=min_support, names=names)
    return _CHECKERS[key]


def make_stream(state: Any, ctx: Context, res: Resources | None = None) -> SentenceStream:
    """The sentence-at-a-time checker for this run (the API's stream builds the same one)."""
    res = res or get_resources()
    return sentence_stream(
        checker=claim_checker(res, ctx.claim_min_support) if ctx.check_claims else None,
        evidence=supporting_lines(evidence_lines(state), ctx.support_top_lines),
        language="en" if state.get("language") == "en" else "nl",
        output_filter=res.output_filter,
        cut_runon=get_settings().answer_cut_runon,
        question=str(state.get("question") or ""),
    )


def supporting_lines(lines: list[EvidenceLine], top: int) -> list[EvidenceLine]:
    """The lines that may support a generated sentence: the ``top`` best that are no question (0: all of them).

    The prompt shows more lines than this, but the model's choice among them is the least reliable step of a small
    model: a sentence must say what one of the best lines says, the same lines the extractive answer would quote.
    """
    answers = [line for line in lines if not line.is_question]
    return answers[:top] if top else answers


async def _query_vector(res: Resources, state: State) -> np.ndarray:
    known = state.get("query_vector")
    if known:
        return np.asarray(known, dtype=np.float32)
    return (await batchers(res).embed_queries([state["question"]]))[0]


@timed
async def evidence(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Select the lines of the reranked documents that answer the question, within the token budget."""
    chunks = state.get("chunks") or []
    if not chunks:
        return {"evidence": []}
    res, ctx = get_resources(), _ctx(runtime)
    vector = await _bounded(_query_vector(res, state))
    doc_ids = list(dict.fromkeys(c["doc_id"] for c in chunks))
    col = res.store.current()
    max_lines = ctx.evidence_max_lines
    if skip_under_load("context"):  # under heavy load: fewer lines, a shorter prefill
        max_lines = min(max_lines, get_settings().degrade_context_chunks)

    def _select() -> list[EvidenceLine]:
        res.lines.refresh(res.store, col)
        budget = ctx.evidence_budget_tokens
        return res.lines.select(vector, state["question"], doc_ids, budget_tokens=budget, max_lines=max_lines)

    lines = await _bounded(asyncio.to_thread(_select))
    requestctx.annotate(
        evidence={
            "version": lines[0].version if lines else str(col.name),
            "lines": [line.line_id for line in lines],
            "top": round(lines[0].score, 4) if lines else None,
        }
    )
    return {"evidence": [Evidence(**asdict(line)) for line in lines]}  # type: ignore[typeddict-item]


def weak(question: str, lines: list[EvidenceLine], ctx: Context) -> bool:
    """Too little to answer from: no line, the best line too weak, or too few of the question's words in the lines.

    ``min_evidence_score`` (off by default) and ``min_question_coverage`` (``chains.coverage``) were chosen on the
    dev halves (BENCHMARKS.md).
    """
    if not lines or max(line.score for line in lines) < ctx.min_evidence_score:
        return True
    coverage = question_coverage(question, lines)
    requestctx.annotate(coverage=round(coverage, 3))
    return coverage < ctx.min_question_coverage


def abstain(state: Any) -> dict[str, Any]:
    """The fixed answer with the route to customer service; it cites nothing."""
    english = state.get("language") == "en"
    answer = prompts.NO_CONTEXT_ANSWER_EN if english else prompts.NO_CONTEXT_ANSWER_NL
    requestctx.annotate(mode="abstained")
    return {"answer": answer, "sources": [], "mode": "abstained", "messages": []}


def sources_of(lines: list[EvidenceLine]) -> list[Source]:
    """The documents of ``lines``, once each, in the lines' order."""
    seen: dict[str, Source] = {}
    for line in lines:
        seen.setdefault(line.doc_id, Source(id=line.doc_id, title=line.title))
    return list(seen.values())


def notes(state: Any) -> str:
    """The fixed notes after a checked answer: the feed date (price/stock) and the route of a mixed request."""
    return " ".join(n for n in (state.get("feed_note"), state.get("route_note")) if n)


def _with_note(answer: str, state: Any) -> str:
    note = notes(state)
    return f"{answer} {note}" if note else answer


@timed
async def check(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Keep the model's sentences that an evidence line supports; else quote the evidence, or abstain."""
    ctx = _ctx(runtime)
    lines = evidence_lines(state)
    stream = make_stream(state, ctx)
    stream.feed(state.get("draft") or "")
    stream.finish(truncated=bool(state.get("truncated")))
    record: dict[str, Any] = {"passed": len(stream.passed), "cut": stream.stopped}
    if stream.failure is not None:
        record["failed"] = {"stage": stream.failure.stage, "reason": stream.failure.reason}
    update: dict[str, Any] = {"cut": stream.stopped}
    if stream.passed and (stream.supporting or not ctx.check_claims):
        cited = sources_of(stream.supporting) or sources_of(lines)
        update |= {"answer": _with_note(stream.released, state), "sources": cited, "mode": "generated"}
    elif weak(state["question"], lines, ctx):
        update |= abstain(state)  # its text is the route to customer service already
    else:
        language = "en" if state.get("language") == "en" else "nl"
        text, used = extractive_answer(lines, language)
        update |= {"answer": _with_note(text, state), "sources": sources_of(used), "mode": "extractive"}
    requestctx.annotate(check=record, mode=update["mode"])
    return update
