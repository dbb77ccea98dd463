"""FAQ pairs, duplicate lines and BM25 terms in the line selection; answer types; an FAQ answer quoted."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from chains.extractive import extractive_answer
from core.evidence import (
    EvidenceLine,
    LineIndex,
    SelectionWeights,
    answer_types,
    doc_tokens,
    lacks_asked_value,
    line_tokens,
)

DIM = 4
Q = np.eye(DIM, dtype=np.float32)[0]  # the question's vector: a line's dense score is its first component
KORTING_Q = "Hebben jullie kortingscodes?"
KORTING_A = "Nieuwe klanten krijgen 10 % korting met de code WELKOM10."


class FakeLines:
    """A lines collection as ``LineIndex.refresh`` reads it: ``get`` page by page."""

    def __init__(self, rows: list[tuple[str, int, str, list[float]]], title: str) -> None:
        self.rows = rows
        self.title = title

    def get(self, include: list[str], limit: int, offset: int) -> dict[str, list[Any]]:
        page = self.rows[offset : offset + limit]
        return {
            "ids": [f"{doc}:{n}" for doc, n, _, _ in page],
            "documents": [text for _, _, text, _ in page],
            "metadatas": [{"doc_id": doc, "line": n, "title": self.title or doc.title()} for doc, n, _, _ in page],
            "embeddings": [vector for _, _, _, vector in page],
        }


class FakeStore:
    def __init__(self, lines: FakeLines) -> None:
        self.lines = lines

    def lines_collection(self, collection: Any = None) -> FakeLines:
        return self.lines


def dense(score: float) -> list[float]:
    """A unit vector whose cosine with ``Q`` is ``score``."""
    return [score, float(np.sqrt(1 - score**2)), 0.0, 0.0]


def index_of(rows: list[tuple[str, int, str, list[float]]], title: str = "", **weights: float) -> LineIndex:
    """An index of ``rows`` (doc_id, line, text, vector), scored on the dense cosine alone unless ``weights``."""
    zero = {"centred": 0.0, "lexical": 0.0, "answer_type": 0.0, "rank": 0.0}
    index = LineIndex(SelectionWeights(**{**zero, **weights}))
    assert index.refresh(FakeStore(FakeLines(rows, title)), SimpleNamespace(name="v1"))  # type: ignore[arg-type]
    return index


FAQ = [
    ("faq", 0, KORTING_Q, dense(0.9)),
    ("faq", 1, KORTING_A, dense(0.1)),
    ("faq", 2, "Kan ik later betalen?", dense(0.3)),
    ("faq", 3, "Ja, met Klarna binnen 30 dagen.", dense(0.2)),
    ("verzending", 0, "Verzending kost € 4,95.", dense(0.5)),
]


def test_an_faq_question_is_never_selected_and_its_score_goes_to_its_answer():
    got = index_of(FAQ).select(Q, "Hebben jullie kortingscodes?", ["faq", "verzending"], budget_tokens=10_000)
    assert not any(line.is_question for line in got)
    assert [(line.doc_id, line.line) for line in got] == [("faq", 1), ("verzending", 0), ("faq", 3)]
    assert got[0].score == pytest.approx(0.9) and got[2].score == pytest.approx(0.3)  # the questions' scores
    assert got[0].asked == KORTING_Q and got[0].rendered == f"{KORTING_Q} {KORTING_A}"
    assert got[2].asked == "Kan ik later betalen?" and got[1].asked == "" and got[1].rendered == got[1].text


def test_an_answer_that_scores_higher_than_its_question_keeps_its_own_score():
    rows = [("faq", 0, KORTING_Q, dense(0.2)), ("faq", 1, KORTING_A, dense(0.8))]
    (got,) = index_of(rows).select(Q, KORTING_Q, ["faq"], max_lines=1)
    assert got.score == pytest.approx(0.8) and got.asked == KORTING_Q


def test_a_question_followed_by_another_question_gives_nothing():
    rows = [
        ("faq", 0, "Kan ik ruilen?", dense(0.9)),
        ("faq", 1, "Kan ik retourneren?", dense(0.1)),
        ("faq", 2, "Ja, binnen 30 dagen.", dense(0.0)),
    ]
    got = index_of(rows).select(Q, "Kan ik ruilen?", ["faq"])
    assert len(got) == 1 and got[0].line == 2
    assert got[0].asked == "Kan ik retourneren?" and got[0].score == pytest.approx(0.1)  # not the 0.9 of line 0


def test_a_question_followed_by_a_line_of_another_document_gives_nothing():
    rows = [("a", 0, "Kan ik ruilen?", dense(0.9)), ("b", 1, "Ja, dat kan.", dense(0.0))]  # line numbers follow on
    got = index_of(rows).select(Q, "Kan ik ruilen?", ["a", "b"])
    assert [(line.doc_id, line.asked) for line in got] == [("b", "")]
    assert got[0].score == pytest.approx(0.0)


def test_a_question_whose_next_line_is_missing_gives_nothing():
    rows = [("faq", 0, "Kan ik ruilen?", dense(0.9)), ("faq", 2, "Ja, dat kan.", dense(0.0))]  # line 1 is not there
    got = index_of(rows).select(Q, "Kan ik ruilen?", ["faq"])
    assert [(line.line, line.asked) for line in got] == [(2, "")]
    assert got[0].score == pytest.approx(0.0)


def test_a_document_of_questions_only_gives_nothing():
    rows = [("faq", 0, "Kan ik ruilen?", dense(0.9)), ("faq", 1, "Kan ik retourneren?", dense(0.8))]
    assert index_of(rows).select(Q, "Kan ik ruilen?", ["faq"]) == []


def test_the_budget_counts_the_question_an_answer_carries():
    rows = [("faq", 0, KORTING_Q, dense(0.9)), ("faq", 1, KORTING_A, dense(0.1))]
    index = index_of(rows, title="FAQ")
    alone, shown = (
        line_tokens(KORTING_A) + doc_tokens("FAQ"),
        line_tokens(f"{KORTING_Q} {KORTING_A}") + doc_tokens("FAQ"),
    )
    assert alone < shown
    assert index.select(Q, KORTING_Q, ["faq"], budget_tokens=shown - 1) == []
    assert [line.line for line in index.select(Q, KORTING_Q, ["faq"], budget_tokens=shown)] == [1]


def test_lines_that_differ_only_in_case_spacing_and_decimal_sign_are_selected_once():
    rows = [
        ("catcave-classic-40", 0, "Prijs: € 29,95", dense(0.9)),
        ("catcave-classic-40", 6, "Prijs: €29,95", dense(0.8)),
        ("catcave-classic-40", 7, "prijs:  €  29.95", dense(0.7)),
        ("catcave-classic-40", 8, "Prijs: € 39,95", dense(0.6)),
    ]
    got = index_of(rows).select(Q, "Wat kost de CatCave Classic 40?", ["catcave-classic-40"], budget_tokens=10_000)
    assert [line.text for line in got] == ["Prijs: € 29,95", "Prijs: € 39,95"]


LEXICAL = [
    ("klimmax", 0, "Kleur: grijs", dense(0.5)),
    ("klimmax", 1, "Kabel: 1,5 meter", dense(0.5)),
    ("klimmax", 2, "Gewicht: 18,5 kg", dense(0.5)),
]


def test_terms_replace_the_questions_own_tokens_for_bm25():
    index = index_of(LEXICAL, lexical=1.0)
    question = "Welke kleur heeft de krabpaal?"
    assert index.select(Q, question, ["klimmax"], max_lines=1)[0].text == "Kleur: grijs"
    assert index.select(Q, question, ["klimmax"], max_lines=1, terms=["gewicht"])[0].text == "Gewicht: 18,5 kg"
    english = "How heavy is the cable?"
    assert index.select(Q, english, ["klimmax"], max_lines=1, terms=["kabel"])[0].text == "Kabel: 1,5 meter"
    assert index.select(Q, english, ["klimmax"], max_lines=1, terms=[])[0].text == "Kleur: grijs"  # no BM25: a tie


@pytest.mark.parametrize(
    ("question", "texts", "expected"),
    [
        ("How heavy is the AutoBox?", ["Gewicht: 18,5 kg", "Inhoud: 55 liter", "Merk: PurrClean"], [1, 0, 0]),
        ("Wat is het gewicht?", ["Merk: X", "Gewicht: 750 gram", "Breedte: 40 cm"], [0, 1, 0]),
        ("Hoe groot is de ingang?", ["Ingang: 17 x 19 cm", "Gewicht: 2 kg", "Kleur: grijs"], [1, 0, 0]),
        ("What size is it?", ["Afmetingen: 50 x 40 x 45 cm", "Prijs: € 54,95"], [1, 0]),
        ("How loud is the fountain?", ["Geluid: max. 30 dB", "Inhoud: 2 liter", "Stil en zuinig"], [1, 0, 0]),
        (
            "Welk nummer kan ik bellen?",
            ["Bel 020-1234567", "Mail klantenservice@kattenhuis.nl", "Open 9-17"],
            [1, 1, 0],
        ),
        ("Can I call you?", ["Telefoon: 0201234567", "Klantenservice"], [1, 0]),
    ],
)
def test_answer_types_favour_lines_that_hold_the_asked_kind_of_value(question, texts, expected):
    assert answer_types(question, texts).tolist() == [float(e) for e in expected]


def test_the_new_answer_types_need_the_value_not_just_the_word():
    assert answer_types("Hoe zwaar is hij?", ["Gewicht: licht", "Zwaar uitgevoerd"]).tolist() == [0.0, 0.0]
    assert answer_types("Hoe luid is hij?", ["Erg stil", "Geluid: laag"]).tolist() == [0.0, 0.0]
    assert answer_types("Welke kleur?", ["Gewicht: 18,5 kg", "Geluid: 30 dB"]).tolist() == [0.0, 0.0]


def test_an_faq_answer_is_quoted_after_its_question():
    answer_line = EvidenceLine(doc_id="faq", line=1, title="Veelgestelde vragen", text=KORTING_A, asked=KORTING_Q)
    answer, used = extractive_answer([answer_line], "nl")
    assert answer == f"Volgens Veelgestelde vragen: {KORTING_Q} {KORTING_A}" and used == [answer_line]


def test_a_selected_faq_answer_is_quoted_with_its_question():
    got = index_of(FAQ, title="Veelgestelde vragen").select(Q, KORTING_Q, ["faq"])
    answer, _ = extractive_answer(got, "nl")
    assert answer.startswith(f"Volgens Veelgestelde vragen: {KORTING_Q} Nieuwe klanten krijgen 10 % korting")


@pytest.mark.parametrize(
    ("question", "answer", "lines", "lacks"),
    [
        ("Wat kost de CatCave Classic 55?", "De CatCave is een overdekte kattenbak.", ["Prijs: € 54,95"], True),
        ("Wat kost de CatCave Classic 55?", "Hij kost € 54,95.", ["Prijs: € 54,95"], False),
        ("Wat kost de CatCave Classic 55?", "De CatCave is een overdekte kattenbak.", ["Overdekt."], False),
        ("Welke kleur heeft de bak?", "Hij is grijs.", ["Kleur: grijs", "Prijs: € 54,95"], False),
        ("How long is the warranty?", "The warranty is 2 years.", ["Garantie: 2 jaar"], False),
        ("How long is the warranty?", "There is a warranty.", ["Garantie: 2 jaar"], True),
        ("Hoe zwaar is hij?", "Hij weegt 18,5 kg.", ["Gewicht: 18,5 kg"], False),
        ("Hoeveel liter is de afvalbak?", "De AutoBox 9 is zelfreinigend.", ["Afvalbak: 9 liter"], True),
        ("Hoeveel liter is de afvalbak?", "De afvalbak heeft 9 liter.", ["Afvalbak: 9 liter"], False),
    ],
)
def test_an_answer_lacks_the_asked_value_only_when_the_lines_hold_one(question, answer, lines, lacks):
    assert lacks_asked_value(question, answer, lines) is lacks
