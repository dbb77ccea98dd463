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
from chains.coverage import asks_comparison, offer_gap, question_coverage
from chains.extractive import extractive_answer
from chains.lexicon import translations, words
from chains.normalize import normalise_text
from core import requestctx
from core.batching import batchers
from core.degrade import skip_under_load
from core.evidence import EvidenceLine, LineIndex, lacks_asked_value
from core.lexical import tokenize
from core.resources import Resources, get_resources
from core.settings import get_settings
from graph.context import Context
from graph.nodes import _bounded, _ctx
from graph.state import Evidence, Source, State
from graph.timing import timed
from guards.stream import SentenceStream, sentence_stream

logger = logging.getLogger(__name__)

_CHECKERS: dict[tuple[int, str, float], ClaimChecker] = {}  # per line index, index version and threshold
_NAMES: dict[tuple[int, str], CatalogueNames] = {}  # per line index and index version


def evidence_lines(state: Any) -> list[EvidenceLine]:
    """The state's evidence as ``EvidenceLine`` objects."""
    return [EvidenceLine(**e) for e in state.get("evidence") or []]


def claim_checker(res: Resources, min_support: float) -> ClaimChecker:
    """One checker per index version (its catalogue names) and threshold, shared by the graph and the stream."""
    key = (id(res.lines), res.lines.version, min_support)
    if key not in _CHECKERS:
        if len(_CHECKERS) > 8:
            _CHECKERS.clear()
        _CHECKERS[key] = ClaimChecker(min_support=min_support, names=catalogue_names(res.lines))
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


def lexical_terms(question: str) -> list[str]:
    """The BM25 terms of a question: its own tokens plus the Dutch words of its English shop words (``LEXICON``)."""
    extra = translations(words(normalise_text(question)))
    return tokenize(question) + (tokenize(" ".join(extra)) if extra else [])


def catalogue_names(index: LineIndex) -> CatalogueNames:
    """The product names and brands of the index version ``index`` holds (built once per version)."""
    key = (id(index), index.version)
    if key not in _NAMES:
        if len(_NAMES) > 8:
            _NAMES.clear()
        _NAMES[key] = CatalogueNames(index.products(), index.brands())
    return _NAMES[key]


def select_evidence(
    index: LineIndex, vector: np.ndarray, question: str, doc_ids: list[str], **limits: Any
) -> list[EvidenceLine]:
    """The evidence lines for ``question`` among ``doc_ids``: what the node selects, ``evals.evidence_eval`` scores."""
    return index.select(vector, question, doc_ids, terms=lexical_terms(question), **limits)


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
        return select_evidence(res.lines, vector, state["question"], doc_ids, budget_tokens=budget, max_lines=max_lines)

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
    """Too little to answer from: no line, a weak best line, an offer or comparison the lines cannot answer.

    Also none of the question's topic words in the lines (a follow-up whose rewrite failed: "En in het zwart?"),
    or (a knob, off by default) too few of them.

    An offer question ("Hebben jullie … van 15 kg?") whose object the lines lack (``chains.coverage.offer_gap``) is
    about something the shop does not have. ``min_evidence_score`` and ``min_question_coverage`` (both off by
    default since session 10: the offer check caught the out-of-catalogue questions the coverage ratio caught on the
    dev halves, without its false abstentions on wordy and English questions; BENCHMARKS.md) stay as knobs.
    """
    if not lines or max(line.score for line in lines) < ctx.min_evidence_score:
        return True
    if not ctx.abstain_unanswerable:
        return question_coverage(question, lines) < ctx.min_question_coverage
    if asks_comparison(question):
        requestctx.annotate(unanswerable="comparison")
        return True
    if offer_gap(question, lines) is not None:
        requestctx.annotate(unanswerable="offer")  # the missing word is the shopper's text: not logged
        return True
    coverage = question_coverage(question, lines)
    requestctx.annotate(coverage=round(coverage, 3))
    return coverage == 0.0 or coverage < ctx.min_question_coverage  # 0: none of what was asked is in the lines


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
    """What follows a checked answer: the line it lacked, the feed date (price/stock), a mixed request's route."""
    return " ".join(n for n in (state.get("quote"), state.get("feed_note"), state.get("route_note")) if n)


def _with_note(answer: str, state: Any) -> str:
    note = notes(state)
    return f"{answer} {note}" if note else answer


def _extractive(state: Any, lines: list[EvidenceLine]) -> tuple[str, list[EvidenceLine]]:
    language = "en" if state.get("language") == "en" else "nl"
    named = catalogue_names(get_resources().lines).mentions(state["question"])
    return extractive_answer(lines, language, question=state["question"], named=named)


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
    question = state["question"]
    if stream.passed and (stream.supporting or not ctx.check_claims):
        cited = sources_of(stream.supporting) or sources_of(lines)
        quote, used = _extractive(state, lines)
        if lacks_asked_value(question, stream.released, [quote]):
            record["incomplete"] = True  # true, but without the price/duration/measure asked: the line follows
            cited += [s for s in sources_of(used) if s not in cited]
        else:
            quote = ""
        answer = _with_note(stream.released, {**state, "quote": quote})
        update |= {"answer": answer, "sources": cited, "mode": "generated", "quote": quote}
    elif weak(question, lines, ctx):
        update |= abstain(state)  # its text is the route to customer service already
    else:
        text, used = _extractive(state, lines)
        update |= {"answer": _with_note(text, state), "sources": sources_of(used), "mode": "extractive"}
    requestctx.annotate(check=record, mode=update["mode"])
    return update
