"""Retrieval and generation nodes. Each is ``async def node(state, runtime) -> dict`` returning only what it changes.

The gates (input guard, scope routes, output filter) are in ``graph.gates``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Literal, TypeVar

import numpy as np
import openai
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from chains import llm_expansion, prompts
from chains.answer import read_answer
from chains.context import format_evidence
from chains.expansion import expand as expand_question
from chains.freshness import feed_note
from core import requestctx
from core.batching import batchers
from core.degrade import skip_under_load
from core.fusion import reciprocal_rank_fusion
from core.lexical import with_dense_scores
from core.metrics import LLM_FALLBACKS
from core.resources import get_resources
from core.settings import get_settings
from core.vectorstore import Hit
from graph.context import Context
from graph.state import Source, State
from graph.timing import timed

logger = logging.getLogger(__name__)

MAX_CITED_SOURCES = 3
T = TypeVar("T")


def _ctx(runtime: Runtime[Context] | None) -> Context:
    ctx = runtime.context if runtime is not None else None
    return ctx if ctx is not None else Context()


async def _bounded(step: Awaitable[T]) -> T:
    """Retrieval and rerank steps: a stuck index or model raises TimeoutError, and the request ends in a 503."""
    return await asyncio.wait_for(step, get_settings().retrieval_timeout_s)


@timed
async def expand(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Add query variants to retrieve with."""
    question = state["question"]
    if not _ctx(runtime).expand_queries or skip_under_load("expansion"):
        return {"queries": [question]}
    settings = get_settings()
    match settings.expansion_provider:
        case "none":
            return {"queries": [question]}
        case "keywords":
            return {"queries": expand_question(question)}
        case "llm":
            found, outcome = await llm_expansion.variants(
                get_resources().llm,
                question,
                state.get("language", "nl"),
                n=settings.expansion_variants,
                timeout_s=settings.expansion_timeout_s,
                max_tokens=settings.expansion_max_tokens,
            )
            requestctx.annotate(expansion={"variants": len(found), "outcome": outcome})
            queries = expand_question(question)
            return {"queries": queries + [v for v in found if v not in queries]}
        case other:
            raise ValueError(f"unknown expansion provider {other!r}; valid: keywords, llm, none")


@timed
async def retrieve(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Dense retrieval for every query, plus BM25 (``hybrid_bm25``), fused with reciprocal rank fusion."""
    res = get_resources()
    ctx = _ctx(runtime)
    k = ctx.retrieve_k
    lexical = res.lexical if ctx.hybrid_bm25 else None
    queries = state.get("queries") or [state["question"]]

    known = state.get("query_vector") or []
    # The guard already embedded the question itself; embed only the variants (batched across requests).
    reuse = bool(known) and queries[0] == state["question"]
    rest = queries[1:] if reuse else queries
    vectors = await _bounded(batchers(res).embed_queries(rest)) if rest else []
    if reuse:
        vectors.insert(0, np.asarray(known, dtype=np.float32))

    def _search() -> list[tuple[Hit, float]]:
        col = res.store.current()  # one index version for the whole request (a re-ingest switches versions)
        dense = [res.store.search(v, k, col) for v in vectors]
        if lexical is None:
            return reciprocal_rank_fusion(dense)[:k]
        lexical.refresh(res.store, col)  # rebuilt once after a switch, then a no-op
        bm25 = with_dense_scores(lexical.search_many(queries, k), dense, res.store, vectors[0], col)  # cosine scale
        return reciprocal_rank_fusion([*dense, *bm25])[:k]

    fused = await _bounded(asyncio.to_thread(_search))
    candidates = [
        {
            "chunk_id": hit.chunk_id,
            "doc_id": hit.doc_id,
            "title": hit.title,
            "text": hit.text,
            "score": hit.score,
            "rrf": rrf,
            "feed_date": hit.metadata.get("feed_date"),  # products from the daily feed (chains.freshness)
        }
        for hit, rrf in fused
    ]
    return {"candidates": candidates}


@timed
async def rerank(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Re-score the candidates and keep the best ``rerank_top_n`` above ``min_relevance``."""
    ctx = _ctx(runtime)
    candidates = state.get("candidates") or []
    if not candidates:
        return {"chunks": []}
    top = max(c["rrf"] for c in candidates) or 1.0
    fusion = [c["rrf"] / top for c in candidates]  # the fusion order is the prior (and the result without reranker)
    if get_resources().reranker.name == "none" or skip_under_load("rerank"):
        scores = fusion
    else:
        scores = await _bounded(
            batchers(get_resources()).score(state["question"], [c["text"] for c in candidates], fusion)
        )
    ranked = sorted(
        ({**c, "rerank_score": s} for c, s in zip(candidates, scores, strict=True)),
        key=lambda c: -c["rerank_score"],
    )
    kept = [c for c in ranked if c["score"] >= ctx.min_relevance][: ctx.rerank_top_n]
    requestctx.annotate(retrieved=[c["doc_id"] for c in kept], top_score=round(kept[0]["score"], 4) if kept else None)
    return {"chunks": kept}


def cited_sources(chunks: list[dict[str, Any]], limit: int = MAX_CITED_SOURCES) -> list[Source]:
    """Unique documents of the chunks, in rank order."""
    seen: dict[str, Source] = {}
    for c in chunks:
        if c["doc_id"] not in seen:
            seen[c["doc_id"]] = Source(id=c["doc_id"], title=c["title"])
    return list(seen.values())[:limit]


@timed
async def prompt(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Build the messages from the evidence lines only; with weak evidence, abstain without calling the model."""
    from graph.trust import abstain, evidence_lines, weak  # graph.trust imports this module

    lines, ctx = evidence_lines(state), _ctx(runtime)
    if weak(state["question"], lines, ctx):
        return abstain(state)
    language = "en" if state.get("language") == "en" else "nl"
    system = prompts.system_prompt(language, get_resources().output_filter.canary)
    template = prompts.USER_TEMPLATE_EN if language == "en" else prompts.USER_TEMPLATE_NL
    shown = lines[: ctx.prompt_max_lines] if ctx.prompt_max_lines else lines  # the selection's order: best first
    user = template.format(context=format_evidence(shown), question=state["question"])
    docs = {line.doc_id for line in lines}
    note = feed_note(state["question"], [c for c in state.get("chunks") or [] if c["doc_id"] in docs], language)
    return {"messages": [SystemMessage(system), HumanMessage(user)], "feed_note": note}


def route_after_prompt(state: State) -> Literal["generate", "__end__"]:
    """Without evidence there is nothing to generate from."""
    return "generate" if state.get("messages") else "__end__"


async def _recorded(stream: AsyncIterator[Any], seen: list[str]) -> AsyncIterator[Any]:
    """Re-yield ``stream``, keeping each chunk's text in ``seen`` (what was generated before a failure)."""
    try:
        async for chunk in stream:
            seen.append(str(chunk.content))
            yield chunk
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


@timed
async def generate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Call the LLM with the prepared messages; stop reading at run-on markup or at the first failing sentence."""
    from graph.trust import make_stream  # graph.trust imports this module

    llm = get_resources().llm
    ctx = _ctx(runtime)
    limit = ctx.max_tokens  # the OpenAI endpoint may ask for fewer tokens, never more
    if not getattr(llm, "annotates_backend", False):  # a RoutedChatModel records the backend it picks itself
        requestctx.annotate(backend=getattr(llm, "model_name", type(llm).__name__))  # before the call: errors count
    checked = make_stream(state, ctx)
    settings = get_settings()
    seen: list[str] = []
    stream = _recorded((llm.bind(max_tokens=limit) if limit else llm).astream(state["messages"]), seen)
    try:
        async with asyncio.timeout(settings.generate_timeout_s):
            message, stopped = await read_answer(stream, cut_runon=settings.answer_cut_runon, until=checked)
    except (openai.APIError, TimeoutError) as exc:
        # Every backend failed or the budget ran out: what was streamed so far is checked like any draft (its last,
        # unfinished sentence dropped), and without a checked sentence the check node quotes the evidence.
        logger.warning("generation failed (%s): answering from the evidence", type(exc).__name__)
        requestctx.annotate(llm_error=type(exc).__name__, generation_failed=True)
        LLM_FALLBACKS.inc()
        return {"draft": "".join(seen), "truncated": True}
    usage = getattr(message, "usage_metadata", None) or {}  # none when stopped early: the server sends it last
    requestctx.annotate(tokens={"prompt": usage.get("input_tokens"), "completion": usage.get("output_tokens")})
    if stopped:
        requestctx.annotate(generation_stopped=True)
    content = str(message.content) if message is not None else ""
    finish = (getattr(message, "response_metadata", None) or {}).get("finish_reason")
    return {"draft": content, "truncated": finish == "length"}
