"""Scoring of answers: facts, citations, abstention, language."""

from __future__ import annotations

from evals.answer_eval import score, summarise

ITEM = {
    "qid": "t01",
    "category": "simple",
    "question": "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?",
    "lang": "nl",
    "relevant": {"purrclean-autobox-9": 2, "kattenbak-onderhoud": 1},
    "facts": ["9 liter"],
}
OUT_OF_CATALOGUE = {**ITEM, "qid": "t30", "category": "out_of_catalogue", "relevant": {}, "facts": []}


def test_correct_answer_with_supported_citation():
    row = score(ITEM, {"answer": "De afvalbak is 9 Liter groot.", "sources": [{"id": "purrclean-autobox-9"}]})
    assert row["correct"] and row["facts_found"] == 1.0 and row["citations_supported"] and row["language_ok"]


def test_missing_fact_and_unsupported_citation_are_caught():
    row = score(ITEM, {"answer": "De afvalbak is groot.", "sources": [{"id": "verzending"}]})
    assert row["correct"] is False and row["facts_found"] == 0.0 and row["citations_supported"] is False


def test_abstention_needs_the_route_and_no_sources():
    good = score(OUT_OF_CATALOGUE, {"answer": "Dat weet ik niet; neem contact op met de klantenservice."})
    invented = score(OUT_OF_CATALOGUE, {"answer": "Ja, kijk bij klantenservice.", "sources": [{"id": "x"}]})
    silent = score(OUT_OF_CATALOGUE, {"answer": "Nee."})
    assert good["abstained"] and not invented["abstained"] and not silent["abstained"]
    assert "correct" not in good


def test_english_answer_to_a_dutch_question_fails_the_language_check():
    row = score(ITEM, {"answer": "The waste bin holds 9 liter of waste.", "sources": []})
    assert row["language_ok"] is False


def test_summary_shares_ignore_questions_a_metric_does_not_apply_to():
    rows = [
        score(ITEM, {"answer": "De afvalbak is 9 liter.", "sources": [{"id": "purrclean-autobox-9"}]}),
        score(OUT_OF_CATALOGUE, {"answer": "Neem contact op met de klantenservice."}),
    ]
    s = summarise(rows)
    assert s["correct"] == 1.0 and s["abstention"] == 1.0 and s["questions"] == 2
