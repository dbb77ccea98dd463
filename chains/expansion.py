"""Query expansion without an LLM call: a keyword-only variant of the question."""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    [
        "de",
        "het",
        "een",
        "en",
        "of",
        "van",
        "in",
        "op",
        "aan",
        "met",
        "voor",
        "bij",
        "naar",
        "is",
        "zijn",
        "was",
        "wordt",
        "worden",
        "ik",
        "je",
        "jij",
        "u",
        "mijn",
        "wat",
        "hoe",
        "hoeveel",
        "waar",
        "wanneer",
        "welke",
        "welk",
        "wie",
        "kan",
        "kun",
        "kunt",
        "kunnen",
        "mag",
        "moet",
        "heb",
        "heeft",
        "hebben",
        "er",
        "dat",
        "die",
        "deze",
        "dit",
        "ook",
        "nog",
        "al",
        "dan",
        "als",
        "om",
        "te",
        "tot",
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "in",
        "on",
        "at",
        "with",
        "for",
        "to",
        "is",
        "are",
        "was",
        "be",
        "i",
        "you",
        "my",
        "what",
        "how",
        "much",
        "many",
        "where",
        "when",
        "which",
        "who",
        "can",
        "could",
        "do",
        "does",
        "have",
        "has",
        "there",
        "that",
        "this",
        "these",
        "please",
        "graag",
        "even",
    ]
)
_WORD = re.compile(r"[\w€.,-]+", re.UNICODE)


def keyword_variant(question: str) -> str:
    """Drop function words and punctuation so that the content words weigh more."""
    words = [w.strip(".,?!") for w in _WORD.findall(question)]
    return " ".join(w for w in words if w and w.lower() not in STOPWORDS)


def expand(question: str) -> list[str]:
    """Return the question plus distinct variants (original first)."""
    queries = [question]
    variant = keyword_variant(question)
    if variant and variant.lower() != question.lower().strip("?!. "):
        queries.append(variant)
    return queries
