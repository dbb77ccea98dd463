"""Input sanitising and a first, rule-based injection guard."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from guards.unicode import decode_tags, fold_confusables, fold_mixed_script, space_ignorable, strip_ignorable

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
Decision = Literal["allow", "refuse"]

# Line and paragraph separators end a line: removed, they would glue two words together.
_LINE_SEPARATORS = re.compile("[\u2028\u2029]")
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
    # What the injection classifier should see: ``question`` with each mixed-script word folded to its skeleton.
    classifier_text: str = ""


class InvalidQuestionError(ValueError):
    """The question is empty or too long after sanitising."""


def sanitize(text: str) -> str:
    """NFKC-normalise, drop invisible characters (``guards.unicode.strip_ignorable``), collapse spaces, strip.

    Retrieval and the LLM get this text. Ignorables go before NFKC (so that what they separated composes)
    and after it (NFKC maps a few characters onto ignorables, such as U+FFA0 onto U+3164).
    """
    text = strip_ignorable(_LINE_SEPARATORS.sub("\n", text))
    text = strip_ignorable(unicodedata.normalize("NFKC", text))
    return _SPACES.sub(" ", text).strip()


def rule_texts(question: str) -> list[str]:
    """The texts the injection rules run on: ``question`` and its confusable folds.

    The folds map non-ASCII look-alikes to their TR39 prototypes and drop combining marks, once as written and
    once lowercased first (a Cyrillic capital І folds to ``l``, its small і to ``i``); plain ASCII stays.
    """
    texts = [question]
    if question.isascii():
        return texts  # nothing to fold (lowercasing adds nothing: the rules ignore case, DAN excepted)
    for variant in (question, question.lower()):
        folded = fold_confusables(variant, drop_marks=True)
        if folded not in texts:
            texts.append(folded)
    return texts


def matched_rules(texts: list[str]) -> list[str]:
    """Names of the injection rules that match any of ``texts``."""
    return [name for name, pattern in INJECTION_PATTERNS.items() if any(pattern.search(t) for t in texts)]


def check_question(raw: str, max_chars: int = MAX_QUESTION_CHARS) -> GuardVerdict:
    """Sanitise ``raw`` and apply the injection rules.

    Raises ``InvalidQuestionError`` for empty or over-long input (a client error),
    and returns a ``refuse`` verdict for injection attempts (a polite refusal). The rules also read the text
    that invisible tag characters spell ("ASCII smuggling"), which sanitising removes from the question.
    """
    question = sanitize(raw)
    if not question:
        raise InvalidQuestionError("the question is empty")
    if len(question) > max_chars:
        raise InvalidQuestionError(f"the question is longer than {max_chars} characters")
    texts = rule_texts(question)
    if hidden := sanitize(decode_tags(raw)):
        texts += rule_texts(hidden)
    if (spaced := sanitize(space_ignorable(raw))) != question:  # "ignore\u200ball previous …": a word break
        texts += rule_texts(spaced)
    reasons = matched_rules(texts)
    classifier_text = fold_mixed_script(question)
    if reasons:
        logger.info("input guard refused a question: %s", ",".join(reasons))
        return GuardVerdict(decision="refuse", question=question, reasons=reasons, classifier_text=classifier_text)
    return GuardVerdict(decision="allow", question=question, classifier_text=classifier_text)
