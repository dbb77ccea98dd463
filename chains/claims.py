"""The claim check: a generated sentence is shown only when one selected evidence line supports it.

The small model is unreliable, so the check is strict on facts and lenient on wording only: a sentence passes
when (a) it names no product the catalogue lacks, (b) it compares with no other shop, (c) an availability claim
("we verkopen ...") names a catalogue product whose document is in the evidence, (d) all its facts
(``chains.normalize``) occur in one line (a price only in the named product's own document, no fact from another
product's document), (e) enough of its content words occur in that line (in Dutch or, through
``chains.lexicon``, in English) and (f) sentence and line agree on negation. A question line ("Mag de Flow 2 in
de vaatwasser?") asserts nothing and supports nothing. The first rejected sentence ends the answer; the
extractive fallback (``chains.extractive``) quotes the lines instead.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from chains.lexicon import (
    AVAILABILITY,
    COMPARISON,
    COURTESY,
    SALE_WORDS,
    content_words,
    has_negation,
    in_vocabulary,
    words,
)
from chains.names import CatalogueNames, fold
from chains.normalize import Fact, fact_spans, normalise_text, supported_by
from chains.sentences import split_sentences
from core.evidence import EvidenceLine

__all__ = [
    "DEFAULT_MIN_SUPPORT",
    "AnswerCheck",
    "CatalogueNames",
    "CheckReason",
    "ClaimChecker",
    "SentenceVerdict",
    "split_sentences",
]

logger = logging.getLogger(__name__)

CheckReason = Literal[
    "supported",
    "unsupported_fact",
    "wrong_product",
    "unknown_product",
    "negation",
    "availability",
    "comparison",
    "low_support",
    "empty",
]
DEFAULT_MIN_SUPPORT = 0.6  # share of a sentence's content words and facts found in its line; tuned on the dev set
CACHED_TEXTS = 4096  # evidence texts whose facts and words are kept (a line is checked once per sentence)
_MARKUP = re.compile(r"^\s*(?:[-*•–]|\d{1,2}[.)])\s+|\*\*|__|`")
_FINAL_PUNCT = " .!?…,;:"


@dataclass(frozen=True)
class SentenceVerdict:
    """The check's decision on one sentence: the supporting line when ``ok`` (None for a courtesy sentence)."""

    ok: bool
    reason: CheckReason
    line: EvidenceLine | None = None
    score: float = 0.0
    detail: str = ""  # e.g. the unsupported fact as written; never logged


@dataclass(frozen=True)
class AnswerCheck:
    """The passing prefix of an answer: its sentences up to the first rejected one, which ends it."""

    passed: list[str] = field(default_factory=list)
    failed: SentenceVerdict | None = None
    verdicts: list[SentenceVerdict] = field(default_factory=list)  # one per checked sentence, the failed one last
    supporting: list[EvidenceLine] = field(default_factory=list)  # the passed sentences' lines, once each


@functools.lru_cache(maxsize=CACHED_TEXTS)
def _text_facts(text: str, *, models_only: bool = False) -> tuple[Fact, ...]:
    return tuple(f for f, _s, _e in fact_spans(text) if f.kind == "model" or not models_only)


@functools.lru_cache(maxsize=CACHED_TEXTS)
def _vocabulary(text: str) -> frozenset[str]:
    return frozenset(words(normalise_text(text)))


def _line_facts(line: EvidenceLine) -> list[Fact]:
    """The line's facts, and the model numbers of its product and title ("AutoBox 9" for every AutoBox 9 line)."""
    return [*_text_facts(line.text), *_text_facts(f"{line.product} {line.title}", models_only=True)]


def _names_of(evidence: Sequence[EvidenceLine]) -> CatalogueNames:
    return CatalogueNames({line.product: line.doc_id for line in evidence if line.product})


def _fail(reason: CheckReason, detail: str = "", score: float = 0.0) -> SentenceVerdict:
    return SentenceVerdict(ok=False, reason=reason, score=score, detail=detail)


def _about(line: EvidenceLine, names: CatalogueNames) -> set[str]:
    """The products a line is about: its product sheet's and the ones it names."""
    return ({line.doc_id} if line.product else set()) | set(names.mentions(line.text))


def _allowed(line: EvidenceLine, about: set[str], fact: Fact | None, mentions: list[str]) -> bool:
    """Whether ``line`` (about the products ``about``) may support ``fact`` of a sentence naming ``mentions``.

    A line about a named product supports anything; a line about other products nothing; a line about no product
    (a policy) anything but a price.
    """
    if not mentions or about & set(mentions):
        return True
    return not about and (fact is None or fact.kind != "money")


class ClaimChecker:
    """Decides, sentence by sentence, whether the evidence lines support a generated sentence."""

    def __init__(self, *, min_support: float = DEFAULT_MIN_SUPPORT, names: CatalogueNames | None = None) -> None:
        """``names``: the catalogue's products and brands (else only the evidence's products are known)."""
        self.min_support = min_support
        self.names = names

    def check(self, sentence: str, evidence: Sequence[EvidenceLine], *, language: str = "nl") -> SentenceVerdict:
        """The verdict on ``sentence``; the English lexicon applies whatever ``language`` (Dutch answers borrow)."""
        verdict = self._check(_MARKUP.sub("", sentence).strip(), evidence)
        logger.debug("claim check (%s): %s %s", language, verdict.reason, verdict.line.line_id if verdict.line else "")
        return verdict

    def _check(self, text: str, evidence: Sequence[EvidenceLine]) -> SentenceVerdict:
        if not any(c.isalnum() for c in text):
            return _fail("empty")
        norm = normalise_text(text)
        if norm.strip(_FINAL_PUNCT) in COURTESY:
            return SentenceVerdict(ok=True, reason="supported", score=1.0)
        names = self.names or _names_of(evidence)
        quoted = [fold(line.text) for line in evidence]
        if unknown := [u for u in names.unknown_products(text) if not any(fold(u) in q for q in quoted)]:
            return _fail("unknown_product", ", ".join(unknown))
        if match := COMPARISON.search(norm):
            return _fail("comparison", match.group())
        named = names.mention_spans(text)
        mentions = list(dict.fromkeys(d for _s, _e, ids in named for d in ids))
        negated = has_negation(norm)
        sale = None if negated else AVAILABILITY.search(norm)
        if sale and not any(e.doc_id in mentions for e in evidence):
            return _fail("availability", sale.group())
        spans = fact_spans(text)
        # A model number in a product's name is checked as the name (rules a, c, d); any other must be in a line.
        facts = [f for f, s, e in spans if f.kind != "model" or not any(a <= s and e <= b for a, b, _ in named)]
        everywhere = [f for line in evidence for f in _line_facts(line)]
        if missing := next((f for f in facts if f.kind == "model" and not supported_by(f, everywhere)), None):
            return _fail("unsupported_fact", missing.raw)
        lines = [line for line in evidence if not line.is_question]
        found = {id(line): _line_facts(line) for line in lines}
        about = {id(line): _about(line, names) for line in lines}
        claims = [f for f in facts if f.kind != "model"]
        candidates = [
            line
            for line in lines
            if all(supported_by(f, found[id(line)]) and _allowed(line, about[id(line)], f, mentions) for f in claims)
            and _allowed(line, about[id(line)], None, mentions)
        ]
        if claims and not candidates:
            return _fact_failure(claims, [(line, found[id(line)], about[id(line)]) for line in lines], mentions)
        chars = list(text)
        for start, end in [(s, e) for _f, s, e in spans] + [(s, e) for s, e, _ids in named]:
            chars[start:end] = " " * (end - start)  # facts count as facts, product names not at all
        content = [w for w in content_words(normalise_text("".join(chars))) if not (sale and w in SALE_WORDS)]
        scored = sorted(
            (
                (_support(content, facts, line, found[id(line)], bool(about[id(line)] & set(mentions))), line)
                for line in candidates
            ),
            key=lambda pair: (pair[0], pair[1].score),
            reverse=True,
        )
        best = scored[0][0] if scored else 0.0
        if best < self.min_support:
            others = [line for line in lines if line not in candidates]
            if not claims and any(_support(content, facts, o, found[id(o)], False) >= self.min_support for o in others):
                return _fail("wrong_product", "", best)  # only another product's line says this
            return _fail("low_support", "", best)
        for score, line in scored:
            if score >= self.min_support and has_negation(normalise_text(line.text)) == negated:
                return SentenceVerdict(ok=True, reason="supported", line=line, score=score)
        return _fail("negation", "", best)

    def check_answer(
        self, text: str, evidence: Sequence[EvidenceLine], *, language: str = "nl", final: bool = True
    ) -> AnswerCheck:
        """Check ``text`` sentence by sentence; the first rejected sentence ends it (nothing after it is kept)."""
        sentences, _rest = split_sentences(text, final=final)
        passed: list[str] = []
        verdicts: list[SentenceVerdict] = []
        supporting: list[EvidenceLine] = []
        for sentence in sentences:
            verdict = self.check(sentence, evidence, language=language)
            verdicts.append(verdict)
            if not verdict.ok:
                return AnswerCheck(passed=passed, failed=verdict, verdicts=verdicts, supporting=supporting)
            passed.append(sentence)
            if verdict.line is not None and verdict.line not in supporting:
                supporting.append(verdict.line)
        return AnswerCheck(passed=passed, failed=None, verdicts=verdicts, supporting=supporting)


def _support(content: list[str], facts: list[Fact], line: EvidenceLine, line_facts: list[Fact], named: bool) -> float:
    """The share of the sentence's content words and facts that ``line`` (with its product and title) states.

    A sentence of nothing but product names ("Ja, we verkopen de CatCave Classic 55.") is supported by a line about
    a product it ``named``.
    """
    units = len(content) + len(facts)
    if not units:
        return 1.0 if named else 0.0
    vocabulary = _vocabulary(f"{line.text} {line.product} {line.title}")
    matched = sum(in_vocabulary(w, vocabulary) for w in content) + sum(supported_by(f, line_facts) for f in facts)
    return matched / units


def _fact_failure(
    claims: list[Fact], lines: list[tuple[EvidenceLine, list[Fact], set[str]]], mentions: list[str]
) -> SentenceVerdict:
    """Why no line holds all facts: one is in no line, one is only in another product's lines, or they are split."""
    for fact in claims:
        if not any(supported_by(fact, found) for _line, found, _about in lines):
            return _fail("unsupported_fact", fact.raw)
    for fact in claims:
        if not any(supported_by(fact, found) and _allowed(line, about, fact, mentions) for line, found, about in lines):
            return _fail("wrong_product", fact.raw)
    return _fail("unsupported_fact", "; ".join(f.raw for f in claims))  # true in different lines, not in one
