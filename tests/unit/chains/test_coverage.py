"""Question coverage: the share of the question's words that the evidence lines speak about."""

from __future__ import annotations

from chains.coverage import question_coverage
from core.evidence import EvidenceLine

RETURNS = [EvidenceLine(doc_id="retourneren", line=3, title="Retourneren", text="Je kunt binnen 30 dagen retourneren.")]


def test_a_question_about_the_lines_is_covered_and_one_about_something_else_is_not():
    assert question_coverage("Kan ik retourneren?", RETURNS) == 1.0
    assert question_coverage("Hoe lang kan ik retourneren?", RETURNS) == 1.0  # "lang" asks, it names no topic
    assert question_coverage("Hoe lang kan ik kattenluiken retourneren?", RETURNS) == 0.5
    assert question_coverage("Verkopen jullie kattenluiken met een chip?", RETURNS) == 0.0


def test_english_words_count_through_the_shop_lexicon():
    assert question_coverage("Can I return it?", RETURNS) == 1.0


def test_a_shoppers_own_details_are_no_topic_words():
    question = "Mail: jan@example.nl, tel. 06-12345678, KH20261234. Kan ik retourneren?"
    assert question_coverage(question, RETURNS) == question_coverage("Mail:, tel.,. Kan ik retourneren?", RETURNS)


def test_a_question_without_content_words_is_fully_covered():
    assert question_coverage("Hoe?", []) == 1.0
