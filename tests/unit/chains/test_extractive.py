"""The extractive answer: at most two evidence lines, quoted with their source, within the word cap."""

from __future__ import annotations

from chains.extractive import MAX_WORDS, extractive_answer
from core.evidence import EvidenceLine


def line(doc: str, n: int, text: str, title: str = "") -> EvidenceLine:
    return EvidenceLine(doc_id=doc, line=n, title=title or doc.title(), text=text, score=1.0 - n / 100)


def test_two_lines_of_one_document_share_one_introduction():
    lines = [
        line("catcave-classic-55", 3, "Prijs: € 54,95", "CatCave Classic 55"),
        line("catcave-classic-55", 5, "Inhoud: 55 liter", "CatCave Classic 55"),
    ]
    answer, used = extractive_answer(lines, "nl")
    assert answer == "Volgens CatCave Classic 55: Prijs: € 54,95. Inhoud: 55 liter."
    assert used == lines


def test_lines_of_two_documents_each_name_their_source_and_english_says_dutch_page():
    lines = [
        line("verzending", 1, "Verzending kost € 4,95.", "Verzending"),
        line("retourneren", 2, "Retourneren kan binnen 30 dagen.", "Retourneren"),
    ]
    answer, used = extractive_answer(lines, "en", same_document=False)
    assert answer == (
        "According to Verzending (Dutch page): Verzending kost € 4,95. "
        "According to Retourneren (Dutch page): Retourneren kan binnen 30 dagen."
    )
    assert [u.doc_id for u in used] == ["verzending", "retourneren"]


def test_only_the_first_two_lines_are_quoted():
    lines = [line("a", i, f"Regel {i}.") for i in range(5)]
    _answer, used = extractive_answer(lines, "nl", same_document=False)
    assert [u.line for u in used] == [0, 1]


def test_the_word_cap_holds_a_long_first_line_is_cut_and_a_second_that_does_not_fit_is_left_out():
    long = " ".join(f"woord{i}" for i in range(80))
    lines = [line("a", 0, long), line("b", 1, "Nog een regel.")]
    answer, used = extractive_answer(lines, "nl", same_document=False)
    quoted = answer.removeprefix("Volgens A: ")
    assert len(quoted.split()) == MAX_WORDS + 1  # the words and the "…" mark
    assert quoted.endswith("…") and [u.doc_id for u in used] == ["a"]


def test_no_evidence_gives_an_empty_answer():
    assert extractive_answer([], "nl") == ("", [])


def test_an_faq_question_line_is_never_quoted():
    lines = [line("faq", 0, "Kan ik later betalen?"), line("faq", 1, "Ja, met Klarna binnen 30 dagen.")]
    answer, used = extractive_answer(lines, "nl")
    assert answer == "Volgens Faq: Ja, met Klarna binnen 30 dagen." and [u.line for u in used] == [1]


def test_by_default_the_second_line_comes_from_the_best_lines_document():
    lines = [line("a", 0, "Regel een."), line("b", 1, "Andere bron."), line("a", 2, "Regel twee.")]
    answer, used = extractive_answer(lines, "nl")
    assert answer == "Volgens A: Regel een. Regel twee." and [(u.doc_id, u.line) for u in used] == [("a", 0), ("a", 2)]


def scored(doc: str, n: int, text: str, score: float, title: str = "", product: str = "") -> EvidenceLine:
    return EvidenceLine(doc_id=doc, line=n, title=title or doc.title(), text=text, score=score, product=product)


def test_with_the_question_a_line_of_another_document_follows_when_it_holds_what_the_first_lacks():
    question = "Wat kost de AquaPaws Flow 2 en wat zijn de verzendkosten?"
    lines = [
        scored("aquapaws-flow-2", 4, "Prijs: € 29,95", 1.10, "AquaPaws Flow 2"),
        scored("verzending", 3, "De verzendkosten zijn € 4,95.", 1.05, "Verzending"),
        scored("aquapaws-flow-2", 9, "De pomp is stil.", 1.00, "AquaPaws Flow 2"),
    ]
    answer, used = extractive_answer(lines, "nl", question=question)
    assert [u.doc_id for u in used] == ["aquapaws-flow-2", "verzending"]
    assert answer == "Volgens AquaPaws Flow 2: Prijs: € 29,95. Volgens Verzending: De verzendkosten zijn € 4,95."
    # without the question, the second line stays in the first line's document
    _answer, used = extractive_answer(lines, "nl")
    assert [(u.doc_id, u.line) for u in used] == [("aquapaws-flow-2", 4), ("aquapaws-flow-2", 9)]


def test_a_line_of_another_document_that_adds_none_of_the_question_words_is_not_quoted():
    question = "Hoe stil is de pomp van de AquaPaws Flow 2?"
    lines = [
        scored("aquapaws-flow-2", 9, "De pomp is stil: max. 30 dB.", 1.10, "AquaPaws Flow 2"),
        scored("garantie", 2, "Elektrische apparaten: 2 jaar garantie.", 1.05, "Garantie"),
        scored("aquapaws-flow-2", 4, "Prijs: € 29,95", 1.00, "AquaPaws Flow 2"),
    ]
    _answer, used = extractive_answer(lines, "nl", question=question)
    assert [(u.doc_id, u.line) for u in used] == [("aquapaws-flow-2", 9), ("aquapaws-flow-2", 4)]


def test_the_question_words_a_line_holds_lift_it_above_a_slightly_better_scored_line():
    question = "Hoeveel bedenktijd heb ik?"
    lines = [
        scored("faq", 1, "We bewaren je gegevens 7 jaar.", 1.02, "Veelgestelde vragen"),
        scored("retourneren", 3, "Je hebt 30 dagen bedenktijd.", 1.00, "Retourneren"),
    ]
    answer, used = extractive_answer(lines, "nl", question=question)
    assert used[0].doc_id == "retourneren" and answer.startswith("Volgens Retourneren: Je hebt 30 dagen bedenktijd.")


def test_the_first_quoted_line_is_of_the_product_the_question_names_not_its_sibling():
    question = "How big is the entrance of the CatCave Classic 40?"
    c55, c40 = "CatCave Classic 55", "CatCave Classic 40"
    lines = [
        scored("catcave-classic-55", 7, "De Classic 55 heeft een grotere ingang van 21 x 23 cm.", 1.20, c55, c55),
        scored("catcave-classic-40", 5, "Ingang: 17 x 19 cm", 1.05, c40, c40),
        scored("catcave-classic-40", 6, "Afmetingen: 50 x 39 x 40 cm", 1.00, c40, c40),
    ]
    answer, used = extractive_answer(lines, "en", question=question, named={"catcave-classic-40"})
    assert (used[0].doc_id, used[0].line) == ("catcave-classic-40", 5)
    assert answer.startswith("According to CatCave Classic 40 (Dutch page): Ingang: 17 x 19 cm.")
    # without a named product the best-scored line leads
    _answer, used = extractive_answer(lines, "en", question=question)
    assert used[0].doc_id == "catcave-classic-55"


def test_a_guides_best_line_stays_first_when_the_question_names_a_product():
    question = "How much litter do I need for the CatCave Classic 55?"
    c55 = "CatCave Classic 55"
    lines = [
        scored("kattenbak-onderhoud", 3, "Voor de CatCave Classic 55 is dat 5 tot 6 liter.", 1.20, "Kattenbakgids"),
        scored("catcave-classic-55", 1, "Prijs: € 54,95", 1.05, c55, c55),
    ]
    _answer, used = extractive_answer(lines, "en", question=question, named={"catcave-classic-55"})
    assert used[0].doc_id == "kattenbak-onderhoud"
