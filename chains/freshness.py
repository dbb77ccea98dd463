"""Prices and stock come from a daily product feed: answers about them say the feed's date.

The note is added by the graph (``prompt`` decides, ``generate`` appends, the stream sends it
last), not left to the model: a small model forgets such instructions, and the date must be right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

# Substrings that make a question one about price or stock (Dutch and English).
PRICE_OR_STOCK = re.compile(
    r"prijs|prijz|kost|€|euro|duur|goedko|aanbieding|korting|voorraad|leverbaar|uitverkocht|beschikba"
    r"|price|cost|how much|cheap|expensive|stock|availab|sold out",
    re.IGNORECASE,
)
NOTE_NL = "(Prijs en voorraad volgens onze productfeed van {date}.)"
NOTE_EN = "(Price and stock as of our product feed of {date}.)"


def _format(day: str, language: str) -> str:
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        return day
    return parsed.strftime("%Y-%m-%d") if language == "en" else parsed.strftime("%d-%m-%Y")


def feed_note(question: str, chunks: Sequence[dict[str, Any]], language: str) -> str:
    """The note for an answer from ``chunks``, or ``""`` when the question is not about price or stock.

    With several feeds in the context the oldest date is named: no figure is claimed fresher than it is.
    """
    dates = sorted(str(c["feed_date"]) for c in chunks if c.get("feed_date"))
    if not dates or not PRICE_OR_STOCK.search(question):
        return ""
    template = NOTE_EN if language == "en" else NOTE_NL
    return template.format(date=_format(dates[0], language))
