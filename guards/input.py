"""Input sanitising and a first, rule-based injection guard."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
Decision = Literal["allow", "refuse"]

# Control characters (except tab/newline) and zero-width / bidi formatting characters.
_INVISIBLE = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[ \t]+")

INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    "ignore_instructions": re.compile(
        r"\b(ignore|disregard|forget)\b.{0,40}\b(previous|prior|above|earlier|all)\b.{0,20}"
        r"\b(instructions?|prompts?|rules?|context)\b"
        r"|\bnegeer\b.{0,40}\b(vorige|eerdere|bovenstaande|alle)\b.{0,20}\b(instructies?|regels|opdrachten)\b"
        r"|\bignorier\w*\b.{0,40}\b(vorherigen?|obigen?|alle)\b.{0,20}\b(anweisungen|regeln)\b",
        re.I | re.S,
    ),
    "system_prompt_request": re.compile(
        r"\b(system\s?prompt|systeemprompt|systemprompt|your instructions|je instructies|"
        r"jouw instructies|deine anweisungen)\b",
        re.I,
    ),
    "repeat_above": re.compile(
        r"\b(repeat|print|show|herhaal|toon|wiederhole)\b.{0,30}\b(everything|all|alles)\b.{0,30}"
        r"\b(above|before|hierboven|daarvoor|oben|davor)\b",
        re.I | re.S,
    ),
    # "DAN" only in capitals: "dan" is an everyday Dutch word ("groter dan", "dan wel"). A developer
    # mode is a persona switch only with a switching verb: "does the feeder app have a developer mode?"
    # is a product question.
    "persona_override": re.compile(
        r"(?-i:\bDAN\b)|\b(do anything now|jailbreak)\b"
        r"|\b(enable|activate|enter|switch\w*|turn(ed)? on|now in|are in|act in|zet (je|jezelf)|bent|nu in|"
        r"activeer|schakel|ga naar|aktivier\w*|wechsl\w*|bist|jetzt im)\b.{0,30}"
        r"\b(developer|dev|ontwikkelaars?|entwickler)[ -]?(mode|modus)\b",
        re.I | re.S,
    ),
}


@dataclass(frozen=True, kw_only=True)
class GuardVerdict:
    """The outcome of the input guard."""

    decision: Decision
    question: str
    reasons: list[str] = field(default_factory=list)


class InvalidQuestionError(ValueError):
    """The question is empty or too long after sanitising."""


def sanitize(text: str) -> str:
    """NFKC-normalise, drop control and zero-width characters, collapse spaces, strip."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    return _SPACES.sub(" ", text).strip()


def check_question(raw: str, max_chars: int = MAX_QUESTION_CHARS) -> GuardVerdict:
    """Sanitise ``raw`` and apply the injection rules.

    Raises ``InvalidQuestionError`` for empty or over-long input (a client error),
    and returns a ``refuse`` verdict for injection attempts (a polite refusal).
    """
    question = sanitize(raw)
    if not question:
        raise InvalidQuestionError("the question is empty")
    if len(question) > max_chars:
        raise InvalidQuestionError(f"the question is longer than {max_chars} characters")
    reasons = [name for name, pattern in INJECTION_PATTERNS.items() if pattern.search(question)]
    if reasons:
        logger.info("input guard refused a question: %s", ",".join(reasons))
        return GuardVerdict(decision="refuse", question=question, reasons=reasons)
    return GuardVerdict(decision="allow", question=question)
