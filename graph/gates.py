"""The graph's gates: the input guard, the scope routes, and the output filter.

Each node is ``async def node(state, runtime) -> dict`` returning only what it changes; the retrieval and
generation nodes are in ``graph.nodes``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from langgraph.runtime import Runtime

from chains import prompts
from chains.context import grounding_text
from chains.language import detect_language
from chains.scope import ProductLines, ProductNames, classify_scope, product_lines, product_names
from core import requestctx
from core.batching import batchers
from core.resources import Resources, get_resources
from core.settings import get_settings
from graph import intent
from graph.context import Context
from graph.nodes import _bounded, _ctx
from graph.state import State
from graph.timing import timed
from guards.classifier import ClassifierUnavailableError
from guards.input import check_question

logger = logging.getLogger(__name__)


async def classify(res: Resources, question: str, folded: str = "") -> tuple[bool, float, list[float]]:
    """Embed the question once (batched across requests; the retriever reuses the vector) and score it.

    ``folded``: the question with its mixed-script words folded to their look-alike skeletons (``guards.input``),
    which is what the classifier reads. A head over e5 vectors scores the vector (the folded text's, embedded in
    the same batch when it differs); a fine-tuned encoder reads the text in a thread, beside the embedding.
    """
    classifier = res.classifier
    if classifier is None:
        raise ClassifierUnavailableError(res.classifier_error)
    text = folded or question
    if not classifier.uses_vector:
        vectors, (flagged, score) = await asyncio.gather(
            batchers(res).embed_queries([question]), asyncio.to_thread(classifier.is_injection, text)
        )
        return flagged, score, [float(x) for x in vectors[0]]
    texts = [question, text] if text != question else [question]
    vectors = await batchers(res).embed_queries(texts)
    flagged, score = classifier.is_injection(text, vectors[-1])
    return flagged, score, [float(x) for x in vectors[0]]


@timed
async def guard(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Sanitise, then rules and the classifier; refuse (fail closed) when either fires or cannot decide."""
    verdict = check_question(state["question"], _ctx(runtime).max_question_chars)
    language = detect_language(verdict.question)
    reasons = list(verdict.reasons)
    score: float | None = None
    vector: list[float] = []
    if not reasons:
        res = await asyncio.to_thread(get_resources)  # built once; not part of the guard's time budget
        try:
            flagged, score, vector = await asyncio.wait_for(
                classify(res, verdict.question, verdict.classifier_text), get_settings().guard_timeout_s
            )
            if flagged:
                reasons.append("classifier")
        except TimeoutError:
            reasons.append("classifier_timeout")
        except ClassifierUnavailableError:
            reasons.append("classifier_unavailable")
        except Exception:  # a classifier that fails cannot decide: refuse (fail closed), as on a timeout
            logger.exception("the injection classifier failed")
            reasons.append("classifier_error")
    decision = "refuse" if reasons else "allow"
    requestctx.annotate(
        guard={"decision": decision, "reasons": reasons, "score": None if score is None else round(score, 4)},
        language=language,
    )
    if decision == "refuse":
        logger.info("guard refused a question: %s", ",".join(reasons))
        requestctx.annotate(mode="refused")
        refusal = prompts.REFUSAL_EN if language == "en" else prompts.REFUSAL_NL
        return {
            "question": verdict.question,
            "language": language,
            "refused": True,
            "answer": refusal,
            "sources": [],
            "guard_reasons": reasons,
            "mode": "refused",
        }
    return {
        "question": verdict.question,
        "language": language,
        "refused": False,
        "guard_reasons": [],
        "query_vector": vector,
    }


def route_after_guard(state: State) -> Literal["scope", "__end__"]:
    """Refused questions end here."""
    return "__end__" if state.get("refused") else "scope"


_RULE_REASONS = {"order": "order", "other_species": "off_topic"}  # the audit's route reason of a rule's route
_LINES: dict[tuple[int, str], tuple[ProductLines, ProductNames]] = {}  # per store and index version: lines and names


def _product_lines() -> tuple[ProductLines, ProductNames]:
    """The product lines (model numbers per line) and product names of the current index version, once per version."""
    store = get_resources().store
    col = store.current()
    key = (id(store), str(col.name))
    if key not in _LINES:
        _LINES.clear()  # one version at a time: a re-ingest switches versions
        hits = store.all_chunks(collection=col)
        products = [h for h in hits if h.metadata.get("doc_type") == "product"]
        _LINES[key] = (
            product_lines({h.title for h in hits}),
            product_names(
                (str(h.metadata.get("brand", "")), str(h.metadata.get("name", "")), h.title, h.text) for h in products
            ),
        )
    return _LINES[key]


@timed
async def scope(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Route an order's status, other animals' products and unknown models to customer service, without a search."""
    language: Literal["nl", "en"] = "en" if state.get("language") == "en" else "nl"
    lines, names = await _bounded(asyncio.to_thread(_product_lines))
    kind = classify_scope(state["question"], lines, names, language)
    if kind == "catalogue":  # not routed by the rules: what does the message want? (guards.intent)
        routed = await _bounded(intent.route(get_resources(), state))
        requestctx.annotate(scope=(routed or {}).get("scope", kind))
        return routed or {"scope": kind}
    requestctx.annotate(
        scope=kind, mode=kind, routed={"outcome": kind, "reason": _RULE_REASONS.get(kind), "by": "rules"}
    )
    return {"scope": kind, "answer": prompts.SCOPE_ANSWERS[(kind, language)], "sources": [], "mode": kind}


def route_after_scope(state: State) -> Literal["expand", "__end__"]:
    """Questions with a fixed route end here."""
    return "expand" if state.get("scope", "catalogue") == "catalogue" else "__end__"


@timed
async def output_filter(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Replace an answer that leaks the canary, the system prompt or internals by the refusal."""
    texts: list[dict[str, Any]] = [*(state.get("chunks") or []), *map(dict, state.get("evidence") or [])]
    context = grounding_text(texts)
    verdict = get_resources().output_filter.check(state.get("answer", ""), context)
    requestctx.annotate(output_filter={"decision": verdict.decision, "reasons": verdict.reasons})
    if verdict.decision == "pass":
        return {}
    refusal = prompts.REFUSAL_EN if state.get("language") == "en" else prompts.REFUSAL_NL
    requestctx.annotate(mode="refused")
    return {"answer": refusal, "sources": [], "refused": True, "mode": "refused"}
