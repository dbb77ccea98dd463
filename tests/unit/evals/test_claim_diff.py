"""The independent claim diff: numbers and product names of an answer against the documents it cites."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from evals import claim_diff
from evals.claim_diff import Catalogue, canonical_number, diff_claims, load_catalogue, strip_feed_note


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def reasons(answer: str, cited: list[str], catalogue: Catalogue, question: str = "") -> list[str]:
    return diff_claims(answer, cited, catalogue, question=question).unsupported


def test_the_catalogue_is_read_from_the_markdown_front_matter_and_the_feed(catalogue):
    assert catalogue.products["catcave-classic-55"] == "CatCave Classic 55"  # products/*.md
    assert catalogue.products["aquapaws-filterset-6"] == "AquaPaws Filterset 6"  # feeds/products.json
    assert {"VitaKat", "PurrClean", "KlonterGoed", "Smulpoes"} <= catalogue.brands
    assert "verzending" in catalogue.texts and "verzending" not in catalogue.products
    assert "54,95" in catalogue.texts["catcave-classic-55"]


def test_decimal_comma_and_point_are_one_number():
    assert canonical_number("54,95") == canonical_number("54.95") == "54.95"
    assert canonical_number("119,00") == canonical_number("119") == "119"
    assert canonical_number("09:00") == canonical_number("9.00") == "9"
    assert canonical_number("36 %") == "36%"
    assert canonical_number("1.234,50") == canonical_number("1,234.50") == "1234.5"


def test_a_supported_answer_has_no_unsupported_claim(catalogue):
    diff = diff_claims("The CatCave Classic 55 costs €54.95 and holds 55 liter.", ["catcave-classic-55"], catalogue)
    assert diff.ok and diff.products == ["CatCave Classic 55"] and "54.95" in diff.numbers


def test_an_invented_price_is_unsupported(catalogue):
    assert reasons("De CatCave Classic 55 kost €49,95.", ["catcave-classic-55"], catalogue) == [
        "number 49.95: not in catcave-classic-55"
    ]


def test_the_wrong_cited_document_does_not_support_the_answer(catalogue):
    assert reasons("Verzending binnen Nederland kost 4,95 euro.", ["garantie"], catalogue) == [
        "number 4.95: not in garantie"
    ]
    assert reasons("Verzending binnen Nederland kost 4,95 euro.", ["verzending"], catalogue) == []
    assert reasons("De afvalbak van de PurrClean AutoBox 9 is groot.", ["verzending"], catalogue) == [
        "product 'PurrClean AutoBox 9' (purrclean-autobox-9) is not cited"
    ]


def test_a_product_that_is_not_in_the_catalogue_is_unsupported(catalogue):
    senior = reasons("Probeer de VitaKat Senior voor oudere katten.", ["vitakat-adult-kip-7kg"], catalogue)
    assert senior == ["product 'VitaKat Senior' is not in the catalogue"]
    variant = reasons("De PurrClean AutoBox 12 kost 349,95 euro.", ["purrclean-autobox-9"], catalogue)
    assert variant == ["product 'PurrClean AutoBox 12' is not in the catalogue"]  # the price is the 9's: cited
    pro = reasons("De PurrClean AutoBox Pro kost 349,95 euro.", ["purrclean-autobox-9"], catalogue)
    assert pro == ["product 'PurrClean AutoBox Pro' is not in the catalogue"]
    assert reasons("De PurrClean AutoBox is stil.", ["purrclean-autobox-9"], catalogue) == []  # the line exists
    assert reasons("Merk: VitaKat.\nKitten Kip is op.", ["voedingsgids"], catalogue) == []  # a bare brand; new line


def test_a_siblings_price_with_the_sibling_not_cited_is_unsupported(catalogue):
    found = reasons(
        "De CatCave Classic 55 kost €54,95.", ["catcave-classic-40"], catalogue, question="Wat kost de Classic 40?"
    )
    # The 40's page names the Classic 55 (so naming it is supported), but not the 55's price.
    assert found == ["number 54.95: not in catcave-classic-40"]
    assert reasons("De CatCave Classic 55 kost €54,95.", ["verzending"], catalogue) == [
        "product 'CatCave Classic 55' (catcave-classic-55) is not cited",
        "number 54.95: not in verzending",
    ]


def test_short_and_lower_case_product_names_match_the_catalogue(catalogue):
    assert reasons("Het VitaKat Kitten voer bevat 36% eiwit.", ["vitakat-kitten-2kg"], catalogue) == []
    lower = diff_claims("een pak smulpoes natvoer mix in saus 12 x 85 g", ["smulpoes-natvoer-12x85g"], catalogue)
    assert lower.ok and lower.numbers == []  # the numbers of a product name are no separate claims


def test_numbers_without_sources_are_unsupported(catalogue):
    assert reasons("Onze winkel is open van 09:00 tot 18:00.", [], catalogue) == [
        "number 9: no document is cited",
        "number 18: no document is cited",
    ]
    assert reasons("Dat weet ik niet; neem contact op met de klantenservice.", [], catalogue) == []


def test_the_feed_date_note_is_no_claim(catalogue):
    answer = "De CatCave Classic 55 kost €54,95.\n\n(Prijs en voorraad volgens onze productfeed van 26-11-2026.)"
    assert strip_feed_note(answer) == "De CatCave Classic 55 kost €54,95."
    assert reasons(answer, ["catcave-classic-55"], catalogue) == []
    english = "It costs 54.95. (Price and stock as of our product feed of 2026-11-26.)"
    assert reasons(english, ["catcave-classic-55"], catalogue) == []


def test_computed_totals_of_cited_amounts_are_supported_but_not_others(catalogue):
    cited = ["catcave-classic-40", "verzending"]
    assert reasons("€39,95 plus €4,95 verzending: samen €44,90.", cited, catalogue) == []
    assert reasons("€39,95 plus €4,95 verzending: samen €45,90.", cited, catalogue) == [
        "number 45.9: not in catcave-classic-40, verzending"
    ]


def test_numbers_from_the_question_and_list_markers_are_no_claims(catalogue):
    answer = "1. Voor een kat van 4,3 kg geef je de hoeveelheid uit de tabel.\n2. Meng langzaam."
    assert reasons(answer, ["voedingsgids"], catalogue, question="Mijn kat weegt 4,3 kg") == []


def test_times_are_compared_whatever_their_separator(catalogue):
    assert reasons("Bel 020-1234567, maandag tot vrijdag 09:00 tot 17:30.", ["klantenservice"], catalogue) == []
    assert reasons("Bel ons tot 17:00.", ["klantenservice"], catalogue) == ["number 17: not in klantenservice"]


def test_a_small_catalogue_of_its_own():
    cat = Catalogue(texts={"a": "Mauwmix Grain 3 kost 12,50."}, products={"a": "Mauwmix Grain 3"}, brands=frozenset())
    assert diff_claims("De mauwmix grain 3 kost 12.50.", ["a"], cat).ok
    assert not diff_claims("Mauwmix Grain 3 kost 13,50.", ["a"], cat).ok


def test_the_diff_does_not_reuse_the_services_claim_check():
    tree = ast.parse(Path(claim_diff.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("chains")}


def test_a_name_that_a_cited_document_itself_contains_is_quoted_not_invented(catalogue):
    app = "De app PurrClean Home meldt als de afvalbak vol is."
    assert reasons(app, ["purrclean-autobox-9"], catalogue) == []
    assert reasons(app, ["verzending"], catalogue) == ["product 'PurrClean Home' is not in the catalogue"]
