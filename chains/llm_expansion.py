"""Query expansion by the LLM: a few rephrasings of the question, bounded in time, junk dropped.

``variants`` never raises: when the LLM is slow, down, or answers with something that is not a
list of questions, retrieval goes on with the original question alone (the caller's fallback).
"""

from __future__ import annotations

import asyncio
import logging
import re

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from chains import prompts

logger = logging.getLogger(__name__)

MIN_CHARS, MAX_CHARS = 4, 200
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)]|[a-z][.)])\s*", re.IGNORECASE)
_JUNK = re.compile(r"<|>|https?://|```|\{|\}")
_WORDS = re.compile(r"\w{2,}")


def parse_variants(text: str, question: str, n: int) -> list[str]:
    """Clean one-per-line variants: no bullets or quotes, no junk, no repeats of the question."""
    seen = {question.casefold().strip(" ?!.")}
    out: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip().strip("\"'“”")
        key = line.casefold().strip(" ?!.")
        if not (MIN_CHARS <= len(line) <= MAX_CHARS) or _JUNK.search(line) or len(_WORDS.findall(line)) < 2:
            continue
        if key in seen:
            continue
        seen.add(key)
        out.append(line)
        if len(out) == n:
            break
    return out


async def variants(
    llm: BaseChatModel, question: str, language: str, *, n: int, timeout_s: float, max_tokens: int
) -> tuple[list[str], str]:
    """Up to ``n`` rephrasings and how it went: ``ok``, ``timeout``, ``error`` or ``junk``."""
    template = prompts.EXPANSION_PROMPT_EN if language == "en" else prompts.EXPANSION_PROMPT_NL
    message = HumanMessage(template.format(n=n, question=question))
    try:
        reply = await asyncio.wait_for(llm.bind(max_tokens=max_tokens).ainvoke([message]), timeout_s)
    except TimeoutError:
        logger.info("query expansion timed out after %.1f s; retrieving with the question alone", timeout_s)
        return [], "timeout"
    except Exception as exc:  # an LLM error must not fail the answer: expansion is optional
        logger.warning("query expansion failed (%s); retrieving with the question alone", type(exc).__name__)
        return [], "error"
    found = parse_variants(str(reply.content), question, n)
    return found, "ok" if found else "junk"
