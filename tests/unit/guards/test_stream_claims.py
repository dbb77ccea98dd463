"""The claims stage of the stream check: an answer of bare facts claims them of what the question asks about."""

from __future__ import annotations

from chains.claims import ClaimChecker
from core.evidence import EvidenceLine
from guards.stream import ClaimsCheck

OTHER = EvidenceLine(doc_id="garantie", line=4, title="Garantievoorwaarden", text="Overige producten: 1 jaar")
QUESTION = "Hoe lang garantie op de FeedWise voerautomaat?"
FEEDER = EvidenceLine(
    doc_id="feedwise-smart-4", line=9, title="FeedWise Smart 4 voerautomaat", text="Garantie: 1 jaar", product=""
)


def stage(*lines: EvidenceLine, question: str = QUESTION) -> ClaimsCheck:
    return ClaimsCheck(checker=ClaimChecker(min_support=0.9), evidence=list(lines), question=question)


def test_a_bare_fact_must_come_from_a_line_about_what_was_asked():
    assert not stage(OTHER).check("1 jaar.", "").ok  # the policy's "other products", not the feeder
    verdict = stage(FEEDER).check("1 jaar.", "")
    assert verdict.ok and verdict.line == FEEDER


def test_without_the_question_a_bare_fact_needs_only_its_line():
    assert stage(OTHER, question="").check("1 jaar.", "").ok


def test_a_sentence_without_facts_or_words_borrows_nothing():
    assert not stage(FEEDER).check("Zeker.", "").ok
