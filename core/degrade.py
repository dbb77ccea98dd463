"""Graceful degradation: under load, skip optional pipeline steps before anyone is refused.

Above ``DEGRADE_SKIP_EXPANSION_ABOVE`` requests in flight (``core.load.in_flight``) query
expansion is skipped; above ``DEGRADE_SKIP_RERANK_ABOVE`` reranking is skipped too; above
``DEGRADE_SHORT_CONTEXT_ABOVE`` the prompt gets at most ``DEGRADE_CONTEXT_CHUNKS`` evidence lines,
which cuts the LLM's prefill, the part of an answer
that grows with the prompt and dominates on a CPU backend. The in-flight cap (``MAX_IN_FLIGHT``)
answers 503 only above all three. Every degraded answer is marked
in its audit line (``degraded: [...]``) and counted in ``DEGRADED_ANSWERS`` per skipped step.
"""

from __future__ import annotations

import logging
from typing import Literal

from core import requestctx
from core.load import in_flight
from core.metrics import DEGRADED_ANSWERS
from core.settings import get_settings

logger = logging.getLogger(__name__)

Step = Literal["expansion", "rerank", "context"]


def over_threshold(step: Step) -> bool:
    """True when more requests are in flight than ``step``'s threshold allows."""
    settings = get_settings()
    match step:
        case "expansion":
            limit = settings.degrade_skip_expansion_above
        case "rerank":
            limit = settings.degrade_skip_rerank_above
        case "context":
            limit = settings.degrade_short_context_above
    return in_flight.count > limit


def mark_degraded(step: Step) -> None:
    """Record in the request's audit line and in the metrics that ``step`` was skipped."""
    record = requestctx.current()
    if record is not None:
        steps = list(record.get("degraded") or [])
        if step not in steps:
            steps.append(step)
        requestctx.annotate(degraded=steps)
    DEGRADED_ANSWERS.labels(skipped=step).inc()
    logger.debug("degraded under load: %s skipped (%d in flight)", step, in_flight.count)


def skip_under_load(step: Step) -> bool:
    """Decide whether to skip ``step`` now; when it is skipped, the answer is marked degraded."""
    if not over_threshold(step):
        return False
    mark_degraded(step)
    return True
