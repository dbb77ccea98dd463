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


LITTER = EvidenceLine(
    doc_id="kattenbak-onderhoud",
    line=7,
    title="Gids voor het onderhoud van de kattenbak",
    text="De vuistregel is: één kattenbak per kat, plus één extra. Met twee katten heb je dus drie kattenbakken nodig.",
)
SECOND_CAT = "We nemen binnenkort een tweede kat. Heb ik dan ook een extra kattenbak nodig?"


def test_a_yes_or_no_that_adds_nothing_to_the_question_fails():
    for said in ("Ja.", "Ja, je hebt een extra kattenbak nodig.", "Nee, dat heb je niet nodig."):
        verdict = stage(LITTER, question=SECOND_CAT).check(said, "")
        assert not verdict.ok and verdict.reason == "nothing_new", said


def test_a_sentence_with_a_word_or_figure_of_its_own_goes_on_to_the_claim_check():
    checked = stage(LITTER, question=SECOND_CAT)
    assert not checked.adds_nothing("Met twee katten heb je drie kattenbakken nodig.")  # "drie" is new
    assert not checked.adds_nothing("Eén kattenbak per kat, plus één extra.")  # words of the line, not the question
    assert checked.check("Met twee katten heb je dus drie kattenbakken nodig.", "").ok
    assert not stage(FEEDER).adds_nothing("1 jaar.")  # a figure the question lacks


def test_without_the_question_nothing_counts_as_restating_it():
    assert not stage(LITTER, question="").adds_nothing("Ja.")
