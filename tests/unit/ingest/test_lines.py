"""Splitting documents into evidence lines: header lines, sentences, list items, table rows, FAQ answers."""

from __future__ import annotations

from ingest.lines import CONTEXT_SEPARATOR, DocLine, line_passage, split_lines, split_sentences, table_lines
from ingest.loaders import Document, product_header

TITLE = "CatCave Classic 55 overdekte kattenbak 55 liter"
META = {"doc_type": "product", "name": "CatCave Classic 55", "sku": "KH-LB-1003", "price_eur": 54.95, "stock": 27}
BODY = """# CatCave Classic 55 – overdekte kattenbak

De CatCave Classic 55 is ruim. Hij kost ca. 55 euro en weegt 2.8 kg.

## Kenmerken

- Inhoud van 55 liter.
- Met koolstoffilter.
1. Eerst de kap eraf.
2) Dan de bak legen.

## Specificaties

| Eigenschap | Waarde |
|---|---|
| Prijs | €54,95 |
| **Inhoud** | 55 liter |

| Land | Kosten | Gratis vanaf |
|---|---|---|
| Nederland | €4,95 | €49 |

## Veelgestelde vragen

**Past een Maine Coon erin?**
Ja. Katten tot 9 kg passen erin.

**Is er een filter?**
Ja, een koolstoffilter.

Los van de vragen.
"""


def product(body: str = BODY, title: str = TITLE) -> Document:
    """A product sheet as the loader builds it: title, the header lines, a blank line, the body."""
    return Document(
        doc_id="catcave-classic-55",
        title=title,
        text=f"{title}\n{product_header(META)}\n\n{body}",
        source="x.md",
        metadata=META,
    )


def texts(lines: list[DocLine]) -> list[str]:
    return [line.text for line in lines]


def by_text(lines: list[DocLine], text: str) -> DocLine:
    return next(line for line in lines if line.text == text)


def test_product_header_lines_come_first_and_the_title_is_context_not_a_line():
    lines = split_lines(product())
    assert texts(lines)[:4] == [
        "Product: CatCave Classic 55",
        "Artikelnummer (SKU): KH-LB-1003",
        "Prijs: € 54,95",
        "Voorraad: 27 op voorraad",
    ]
    assert all(line.context == TITLE for line in lines[:4])
    assert TITLE not in texts(lines)
    assert [line.line for line in lines] == list(range(len(lines)))  # 0-based ordinals in document order


def test_headings_are_context_not_lines():
    lines = split_lines(product())
    assert not any(t.startswith("#") or t in ("Kenmerken", "Specificaties") for t in texts(lines))
    first = by_text(lines, "De CatCave Classic 55 is ruim.")
    assert first.context == TITLE  # the H1 restates the title: not repeated in the context
    assert by_text(lines, "Inhoud van 55 liter.").context == f"{TITLE}{CONTEXT_SEPARATOR}Kenmerken"


def test_sentences_split_but_not_inside_numbers_or_abbreviations():
    lines = split_lines(product())
    assert "Hij kost ca. 55 euro en weegt 2.8 kg." in texts(lines)
    parts = split_sentences(
        "Mail ons op klantenservice@kattenhuis.nl. Zie www.kattenhuis.nl/retour voor o.a. het formulier, bijv. "
        "online. Het kost €54,95 per stuk! Klaar? Ja, e.g. this stays whole. Een nieuwe zin."
    )
    assert parts == [
        "Mail ons op klantenservice@kattenhuis.nl.",
        "Zie www.kattenhuis.nl/retour voor o.a. het formulier, bijv. online.",
        "Het kost €54,95 per stuk!",
        "Klaar? Ja, e.g. this stays whole.",  # "Klaar?" is too short to stand alone: joined to the next
        "Een nieuwe zin.",
    ]


def test_list_items_are_lines_without_their_markers():
    lines = texts(split_lines(product()))
    for item in ("Inhoud van 55 liter.", "Met koolstoffilter.", "Eerst de kap eraf.", "Dan de bak legen."):
        assert item in lines
    assert not any(t.startswith(("- ", "1. ", "2) ")) for t in lines)


def test_a_list_item_gets_the_sentence_that_introduces_the_list_as_context():
    body = (
        "## Uitzonderingen\n\nDeze producten kun je niet retourneren:\n\n- geopende voeding;\n- vulling.\n\nDaarna.\n"
    )
    lines = split_lines(product(body))
    assert by_text(lines, "geopende voeding;").context.endswith("Deze producten kun je niet retourneren:")
    assert by_text(lines, "Daarna.").context == f"{TITLE}{CONTEXT_SEPARATOR}Uitzonderingen"


def test_table_rows_read_as_text_and_header_and_separator_are_not_lines():
    lines = split_lines(product())
    assert "Prijs: €54,95" in texts(lines) and "Inhoud: 55 liter" in texts(lines)  # bold markup removed
    assert "Nederland: Kosten €4,95; Gratis vanaf €49" in texts(lines)
    assert not any("Eigenschap" in t or "---" in t or "Land" in t for t in texts(lines))
    assert by_text(lines, "Prijs: €54,95").context.endswith("Specificaties — Eigenschap / Waarde")


def test_table_lines_without_a_header_row():
    assert table_lines(["| a | b |", "| c | d |"]) == ["a: b", "c: d"]
    assert table_lines(["| h1 | h2 | h3 |", "|:--|--:|---|", "| x | 1 | |"]) == ["x: h2 1"]


def test_faq_answers_carry_their_question_in_the_context():
    lines = split_lines(product())
    question = by_text(lines, "Past een Maine Coon erin?")
    answer = by_text(lines, "Ja. Katten tot 9 kg passen erin.")  # a bare "Ja." is joined to the next sentence
    assert question.context == f"{TITLE}{CONTEXT_SEPARATOR}Veelgestelde vragen"
    assert answer.context == f"{question.context}{CONTEXT_SEPARATOR}Past een Maine Coon erin?"
    assert by_text(lines, "Ja, een koolstoffilter.").context.endswith("Is er een filter?")
    assert by_text(lines, "Los van de vragen.").context == question.context  # a blank line ended the FAQ entry


def test_empty_lines_and_lines_without_letters_or_digits_are_dropped():
    doc = Document(doc_id="d", title="Titel", text="Titel\n\n---\n\n- \n\n| --- |\n\n***\n\nEcht.", source="x")
    assert texts(split_lines(doc)) == ["Echt."]


def test_a_very_long_sentence_is_split_at_semicolons():
    long = "; ".join(" ".join(f"woord{i}_{j}" for j in range(12)) for i in range(5)) + "."
    doc = Document(doc_id="d", title="Titel", text=f"Titel\n\n{long}", source="x")
    lines = texts(split_lines(doc))
    assert len(lines) == 5 and lines[0].endswith(";") and lines[-1].endswith(".")


def test_a_document_without_its_title_line_and_the_embedded_passage():
    doc = Document(doc_id="d", title="Lang document", text="De eerste alinea. De tweede alinea.", source="x")
    lines = split_lines(doc)
    assert texts(lines) == ["De eerste alinea.", "De tweede alinea."]
    assert line_passage(lines[0]) == "Lang document: De eerste alinea."
