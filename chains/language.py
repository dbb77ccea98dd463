"""A small, dependency-free Dutch/English detector for choosing prompt and refusal language."""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["nl", "en"]

_NL = frozenset(
    [
        "de",
        "het",
        "een",
        "en",
        "van",
        "is",
        "ik",
        "je",
        "jij",
        "mijn",
        "wat",
        "hoe",
        "hoeveel",
        "waar",
        "wanneer",
        "welke",
        "kan",
        "kun",
        "kunnen",
        "wordt",
        "zijn",
        "niet",
        "ook",
        "met",
        "voor",
        "op",
        "bij",
        "naar",
        "dat",
        "die",
        "deze",
        "dit",
        "er",
        "heb",
        "heeft",
        "hebben",
        "moet",
        "mag",
        "graag",
        "kost",
        "kosten",
        "verzending",
        "bestelling",
        "kat",
        "katten",
        "kattenbak",
        "liter",
        "retour",
        "garantie",
        "dag",
        "dagen",
    ]
)
_EN = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "of",
        "is",
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
        "can",
        "could",
        "does",
        "do",
        "be",
        "not",
        "also",
        "with",
        "for",
        "on",
        "at",
        "to",
        "that",
        "this",
        "these",
        "there",
        "have",
        "has",
        "must",
        "may",
        "please",
        "cost",
        "costs",
        "shipping",
        "order",
        "cat",
        "cats",
        "litter",
        "box",
        "return",
        "warranty",
        "day",
        "days",
    ]
)
_WORD = re.compile(r"[a-zà-ÿ]+")


def detect_language(text: str, default: Language = "nl") -> Language:
    """Return ``"en"`` when English function words clearly outnumber Dutch ones, else ``default``."""
    words = _WORD.findall(text.lower())
    nl = sum(w in _NL for w in words)
    en = sum(w in _EN for w in words)
    if en > nl:
        return "en"
    if nl > en:
        return "nl"
    return default
