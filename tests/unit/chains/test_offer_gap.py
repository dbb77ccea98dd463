"""Offer questions the evidence cannot answer, comparisons with other shops, and the trust check that abstains."""

from __future__ import annotations

from typing import Any

import pytest

from chains.coverage import asks_comparison, offer_gap, question_coverage
from chains.lexicon import in_vocabulary
from core import requestctx
from core.evidence import EvidenceLine
from core.lexical import tokenize
from graph.context import Context
from graph.trust import lexical_terms, weak


def line(doc: str, n: int, text: str, title: str) -> EvidenceLine:
    return EvidenceLine(doc_id=doc, line=n, title=title, text=text, score=1.0 - n / 100)


FOUNTAINS = [
    line("aquaflow", 0, "Product: AquaFlow Drinkfontein", "AquaFlow Drinkfontein"),
    line("aquaflow", 3, "Materiaal: kunststof (BPA-vrij)", "AquaFlow Drinkfontein"),
    line("steelflow", 3, "Materiaal: roestvrij staal", "SteelFlow Drinkfontein"),
]
VITAKAT = [
    line("vitakat-adult-kip", 0, "Product: VitaKat Adult Kip", "VitaKat Adult Kip"),
    line("vitakat-adult-kip", 4, "Inhoud: zak van 7 kg", "VitaKat Adult Kip"),
]
VITAKAT_15 = line("vitakat-adult-kip-15", 4, "Inhoud: zak van 15 kg", "VitaKat Adult Kip 15 kg")
KLIMMAX = [
    line("klimmax", 0, "Product: KlimMax Krabpaal", "KlimMax Krabpaal"),
    line("klimmax", 2, "Prijs: € 89,95", "KlimMax Krabpaal"),
    line("klimmax", 5, "Materiaal: sisal en jute", "KlimMax Krabpaal"),
]
KLONTERGOED = [line("klontergoed", 1, "Prijs: € 12,95", "KlonterGoed Kattenbakvulling")]


# offer_gap


def test_a_material_the_lines_lack_is_the_gap_and_one_they_hold_is_none():
    assert offer_gap("Hebben jullie een drinkfontein van keramiek?", FOUNTAINS) == "keramiek"
    assert offer_gap("Hebben jullie een drinkfontein van kunststof?", FOUNTAINS) is None


def test_a_measure_the_lines_lack_is_the_gap_as_the_shopper_wrote_it():
    question = "Hebben jullie VitaKat Adult Kip ook in een zak van 15 kg?"
    assert offer_gap(question, VITAKAT) == "15 kg"
    assert offer_gap(question, [*VITAKAT, VITAKAT_15]) is None
    assert offer_gap("Hebben jullie VitaKat Adult Kip in 15kg?", [*VITAKAT, VITAKAT_15]) is None  # the same measure
    assert offer_gap("Hebben jullie VitaKat Adult Kip in 15 kilo?", VITAKAT) == "15 kilo"  # the raw text
    assert offer_gap("Hebben jullie VitaKat Adult Kip in 400 gram?", VITAKAT) == "400 gram"
    assert offer_gap("Is VitaKat Adult Kip available in 20 litre?", VITAKAT) == "20 litre"


@pytest.mark.parametrize(
    ("question", "gap"),
    [
        ("Wat kost een trommel voor de KlimMax krabpaal?", "trommel"),  # the lines hold another thing's price
        ("Wat kost een consult bij de dierenarts?", "consult"),
        ("How much is a replacement rope for the KlimMax?", "replacement"),
        ("Wat is de prijs van een los plateau voor de KlimMax?", "los"),
        ("Wat kost de KlimMax krabpaal?", None),  # the thing priced is in the lines
        ("How much is the KlimMax?", None),
        ("How much does the trommel weigh?", None),  # a weight question, not a price: no cue
        ("How many pouches are in a pack and how much does each pouch weigh?", None),
        ("Wat kost de drinkfontein van keramiek?", "keramiek"),  # not sold, so no price either
        ("Hoeveel kosten de KlimMax krabpalen?", None),
    ],
)
def test_a_price_question_about_something_the_lines_lack_is_a_gap(question, gap):
    assert offer_gap(question, [*KLIMMAX, *FOUNTAINS]) == gap


def test_a_product_the_lines_name_is_no_gap():
    assert offer_gap("Hebben jullie VitaKat Adult Kip?", VITAKAT) is None
    assert offer_gap("Verkopen jullie de AquaFlow drinkfontein?", FOUNTAINS) is None


@pytest.mark.parametrize(
    ("question", "gap"),
    [
        ("Verkopen jullie een drinkfontein van keramiek?", "keramiek"),
        ("Bestaat er een drinkfontein van keramiek?", "keramiek"),
        ("Is er een drinkfontein van keramiek?", "keramiek"),
        ("Kan ik bij jullie een afspraak maken?", "afspraak"),
        ("Bieden jullie trimmen aan?", "trimmen"),
        ("Kunnen jullie de drinkfontein installeren?", "installeren"),
        ("Do you sell GPS trackers for cats?", "gps"),
        ("Do you provide grooming?", "grooming"),
        ("Can I buy a ceramic fountain?", "ceramic"),
        ("Is de AquaFlow drinkfontein in het groen verkrijgbaar?", "groen"),
        ("Is de AquaFlow drinkfontein in het groen op voorraad?", "groen"),
        ("Is the AquaFlow fountain in green in stock?", "green"),
    ],
)
def test_every_offer_cue_checks_what_is_asked_for(question, gap):
    assert offer_gap(question, FOUNTAINS) == gap


def test_english_words_count_through_the_lexicon():
    assert offer_gap("Do you have fountains?", FOUNTAINS) is None  # "fountain" → "drinkfontein"
    assert offer_gap("Do you have a water fountain?", FOUNTAINS) is None  # the phrase "water_fountain"
    assert offer_gap("Do you have a fountain of stainless steel?", FOUNTAINS) is None


def test_only_what_follows_the_cue_is_checked_not_the_complaint_before_it():
    assert offer_gap("Mijn kat drinkt echt weinig, hebben jullie daar iets voor?", FOUNTAINS) is None
    assert offer_gap("Keramiek is mooi. Hebben jullie een drinkfontein?", FOUNTAINS) is None  # another sentence
    assert offer_gap("Ik zoek een drinkfontein. Hebben jullie er een van keramiek?", FOUNTAINS) == "keramiek"
    assert offer_gap("Ik wil iets van keramiek. Is de AquaFlow drinkfontein verkrijgbaar?", FOUNTAINS) is None


def test_a_clause_about_the_thing_asked_for_is_not_checked_only_the_thing():
    feeder = [line("feedwise", 1, "De FeedWise Smart 4 is een automatische voerautomaat met app.", "FeedWise Smart 4")]
    # "die ik met mijn telefoon kan bedienen" and "I can control from my phone" say what it should do: not checked
    assert offer_gap("Verkopen jullie een voerautomaat die ik met mijn telefoon kan bedienen?", feeder) is None
    assert offer_gap("Do you sell an automatic feeder I can control from my phone?", feeder) is None
    # an attribute of the thing itself is still checked
    assert offer_gap("Verkopen jullie een voerautomaat van keramiek?", feeder) == "keramiek"


def test_a_compound_is_covered_only_when_every_part_is():
    boxes = [line("catcave", 1, "De kattenbak heeft een vulling van 5 liter.", "CatCave Kattenbak")]
    assert offer_gap("Hebben jullie kattenbakvulling?", boxes) is None  # katten|bak + vulling
    # "katten" alone does not cover a service or a thing for cats the lines do not have
    assert offer_gap("Doen jullie ook aan kattenoppas?", boxes) == "kattenoppas"
    assert offer_gap("Hebben jullie hondenbrokken?", boxes) == "hondenbrokken"


def test_words_that_say_how_rather_than_what_are_no_gap():
    assert offer_gap("Is there a fountain made of stainless steel?", FOUNTAINS) is None


def test_a_price_bound_is_no_thing_asked_for():
    assert offer_gap("Hebben jullie krabpalen van minder dan 100 euro?", KLIMMAX) is None
    assert offer_gap("Do you have a scratching post under 100 euros?", KLIMMAX) is None
    assert offer_gap("Hebben jullie krabpalen van minder dan 100 euro in het groen?", KLIMMAX) == "groen"


def test_a_one_letter_typo_of_a_word_of_five_letters_or_more_is_covered():
    assert offer_gap("Hebben jullie de klimax krabpaal?", KLIMMAX) is None  # "klimmax", one letter left out
    assert offer_gap("Hebben jullie krabpalen van sizal?", KLIMMAX) is None  # five letters, one substituted
    assert offer_gap("Hebben jullie de klimoxy krabpaal?", KLIMMAX) == "klimoxy"  # two edits
    assert offer_gap("Hebben jullie krabpalen van jite?", KLIMMAX) == "jite"  # four letters: no typo allowed


def test_the_lines_titles_count_as_evidence():
    untitled = [line("aquaflow", 3, "Materiaal: kunststof", "Drinkfontein")]
    assert offer_gap("Hebben jullie een drinkfontein?", untitled) is None
    assert offer_gap("Hebben jullie een drinkfontein?", []) == "drinkfontein"


def test_a_question_without_an_offer_cue_has_no_gap():
    assert offer_gap("Hoe maak ik de drinkfontein van keramiek schoon?", FOUNTAINS) is None
    assert offer_gap("Is het mogelijk een drinkfontein van keramiek te bestellen", FOUNTAINS) is None


# asks_comparison and question_coverage


def test_a_comparison_with_another_shop_is_recognised_and_one_between_products_is_not():
    assert asks_comparison("Is KlonterGoed bij jullie goedkoper dan bij bol.com?")
    assert asks_comparison("Is it cheaper on Amazon?")
    assert asks_comparison("Zijn jullie duurder dan Zooplus?")
    assert not asks_comparison("Is de Classic 40 goedkoper dan de Classic 55?")
    assert not asks_comparison("Is the Classic 40 cheaper than the Classic 55?")


def test_coverage_is_zero_when_no_topic_word_is_in_the_lines():
    assert question_coverage("En is die er ook in het zwart?", FOUNTAINS) == 0.0
    assert question_coverage("Is de drinkfontein er ook in het zwart?", FOUNTAINS) == 0.5


def test_a_plural_is_looked_up_by_its_stem_in_the_lexicon():
    assert in_vocabulary("fountains", frozenset({"drinkfontein"}))  # not a LEXICON key itself
    assert in_vocabulary("fountain", frozenset({"drinkfontein"}))
    assert not in_vocabulary("fountains", frozenset({"kattenbak"}))


# graph.trust.weak and lexical_terms


def _weak(question: str, lines: list[EvidenceLine], ctx: Context | None = None) -> tuple[bool, dict[str, Any]]:
    """``weak``'s answer and what it wrote into the request's audit record."""
    record: dict[str, Any] = {}
    token = requestctx.begin(record)
    try:
        return weak(question, lines, ctx or Context()), record
    finally:
        requestctx.end(token)


def test_the_default_knobs_are_off():
    ctx = Context()
    assert ctx.min_question_coverage == 0.0 and ctx.min_evidence_score == 0.0


def test_an_offer_gap_is_weak_and_recorded_without_the_missing_word():
    got, record = _weak("Hebben jullie een drinkfontein van keramiek?", FOUNTAINS)
    assert got is True
    assert record == {"unanswerable": "offer"}  # the shopper's word is not logged, nor is coverage computed


def test_a_comparison_with_another_shop_is_weak():
    got, record = _weak("Is KlonterGoed bij jullie goedkoper dan bij bol.com?", KLONTERGOED)
    assert got is True and record == {"unanswerable": "comparison"}


def test_no_topic_word_in_the_lines_is_weak():
    got, record = _weak("En is die er ook in het zwart?", FOUNTAINS)
    assert got is True
    assert record == {"coverage": 0.0}  # not an offer question: the coverage decided


def test_an_ordinary_covered_question_is_not_weak():
    got, record = _weak("Wat kost de KlimMax krabpaal?", KLIMMAX)
    assert got is False and record == {"coverage": 1.0}
    assert weak("Hebben jullie VitaKat Adult Kip in 15 kg?", [*VITAKAT, VITAKAT_15], Context()) is False


def test_weak_works_outside_a_request():
    assert requestctx.current() is None
    assert weak("Hebben jullie een drinkfontein van keramiek?", FOUNTAINS, Context()) is True
    assert weak("Wat kost de KlimMax krabpaal?", KLIMMAX, Context()) is False


def test_no_lines_or_a_weak_best_line_is_weak():
    assert weak("Wat kost de KlimMax krabpaal?", [], Context()) is True
    assert weak("Wat kost de KlimMax krabpaal?", KLIMMAX, Context(min_evidence_score=2.0)) is True


def test_the_coverage_knob_still_abstains_below_its_threshold():
    question = "Is de drinkfontein er ook in het zwart?"  # half covered
    assert weak(question, FOUNTAINS, Context()) is False
    assert weak(question, FOUNTAINS, Context(min_question_coverage=0.6)) is True


def test_an_english_question_gets_the_dutch_lexicon_words_as_terms():
    terms = lexical_terms("How heavy is the cable?")
    assert terms[:2] == tokenize("How heavy is the cable?") == ["heavy", "cable"]
    assert {"zwaar", "gewicht", "kabel"} <= set(terms)


def test_a_dutch_question_without_lexicon_words_keeps_just_its_tokens():
    assert lexical_terms("Hoe zwaar is de kabel?") == tokenize("Hoe zwaar is de kabel?") == ["zwaar", "kabel"]
    # Dutch synonyms in the lexicon ("kost" → "prijs") are added like translations
    assert {"kost", "prijs", "kosten"} <= set(lexical_terms("Wat kost de krabpaal?"))
