"""Plain text only: remove the markup a chat UI would render, and notice answers that parrot the question.

``strip_markup`` removes (does not escape: the widget renders text, so escaped markup would show ``&lt;`` to a
shopper) HTML tags and comments, a tag cut off at the end, event-handler attributes, ``javascript:``/``vbscript:``/
``data:`` URLs, Markdown images, and Markdown links (their text stays, the target goes: links in an answer are
plain addresses that the leak stage checks against the shop's domain and the evidence). HTML entities are decoded
first, so ``&lt;script&gt;`` cannot come back as a tag. ``echoed_span`` finds the longest verbatim span of the
question in an answer sentence that the evidence does not contain (a payload parroted back).
"""

from __future__ import annotations

import html
import re
from difflib import SequenceMatcher

MAX_PASSES = 3  # entity-decoding can reveal new markup; a few passes reach a fixed point
ECHO_MIN_CHARS = 24
"""A sentence that repeats this many characters of the question verbatim, not found in the evidence, is an echo
(product names and prices are in the evidence, so they never count). A chosen value, not tuned; what it replaced
on the dev and benign questions: BENCHMARKS.md, issue #16."""

_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_BLOCK = re.compile(r"<\s*(script|style)\b[^>]*>.*?(?:<\s*/\s*\1\s*>|$)", re.IGNORECASE | re.S)  # with content
_TAG = re.compile(r"</?\s*[a-z!?][^<>]*>|<\s*/?\s*[a-z][^<>]*$", re.IGNORECASE)
_HANDLER = re.compile(r"\bon[a-z]{3,}\s*=\s*(?:\"[^\"]*\"?|'[^']*'?|[^\s>]+)", re.IGNORECASE)
_SCRIPT_URL = re.compile(r"\b(?:javascript|vbscript|livescript)\s*:[^\s]*|\bdata\s*:\s*[a-z]+/[\w.+-]+[^\s]*", re.I)
_TARGET = r"\((?:[^()]|\([^()]*\))*\)?"  # a Markdown link target, with one level of parentheses inside
_MD_IMAGE = re.compile(r"!\[[^\]]*\]" + _TARGET)
_MD_LINK = re.compile(r"\[([^\]]*)\]" + _TARGET)
_MD_REF = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.M)  # "[1]: https://…" reference definitions
_WORD = re.compile(r"[^\W_]+(?:[.,'-][^\W_]+)*")
_EDGE = ".,;:!?()\"'"
_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")


def strip_markup(text: str) -> str:
    """``text`` without HTML, script URLs and Markdown links/images; the words around them stay."""
    for _ in range(MAX_PASSES):
        before = text
        text = html.unescape(text)
        text = _COMMENT.sub(" ", text)
        text = _BLOCK.sub(" ", text)
        text = _MD_IMAGE.sub(" ", text)
        text = _MD_LINK.sub(r"\1", text)
        text = _MD_REF.sub(" ", text)
        text = _TAG.sub(" ", text)
        text = _HANDLER.sub(" ", text)
        text = _SCRIPT_URL.sub(" ", text)
        if text == before:
            break
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text))
    return text.strip()


def has_markup(text: str) -> bool:
    """Whether ``strip_markup`` would change anything but spacing."""
    return " ".join(strip_markup(text).split()) != " ".join(text.split())


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def echoed_span(sentence: str, question: str, evidence: str) -> str:
    """The words of the longest verbatim span of ``question`` in ``sentence`` that ``evidence`` lacks ("" if none).

    Words the evidence has (a product name, a price) are dropped from the span: restating them is answering.
    """
    s, q = _fold(sentence), _fold(question)
    if not s or not q:
        return ""
    match = SequenceMatcher(None, s, q, autojunk=False).find_longest_match(0, len(s), 0, len(q))
    known = set(_WORD.findall(_fold(evidence)))
    return " ".join(w for w in s[match.a : match.a + match.size].split() if w.strip(_EDGE) not in known)
