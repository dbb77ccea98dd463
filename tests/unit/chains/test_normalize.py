"""chains.normalize: facts of Dutch and English text in one canonical form."""

from __future__ import annotations

import pytest

from chains.normalize import (
    Fact,
    canonical_number,
    extract_facts,
    fact_matches,
    fact_spans,
    normalise_text,
    supported_by,
)


def only(text: str) -> tuple[str, str]:
    """The (kind, value) of the one fact of ``text``."""
    facts = extract_facts(text)
    assert len(facts) == 1, facts
    return facts[0].kind, facts[0].value


@pytest.mark.parametrize(
    ("texts", "kind", "value"),
    [
        (["€ 54,95", "€54,95", "54,95 euro", "54.95 euros", "EUR 54.95", "€54.95", "54,95 €"], "money", "54.95"),
        (["€ 49", "49 euro", "€49,-", "€ 49,00", "49 euro's"], "money", "49"),
        (["€ 1.000", "€1,000", "1.000 euro"], "money", "1000"),
        (["9 l", "9 liter", "9 litre", "9 liters", "9 litres", "9l"], "number", "9 l"),
        (["2,8 kg", "2.8 kg", "2,8 kilo"], "number", "2.8 kg"),
        (["85 g", "85 gram", "85 grams"], "number", "85 g"),
        (["150 cm", "150 centimeter"], "number", "150 cm"),
        (["410 kcal"], "number", "410 kcal"),
        (["500 ml"], "number", "500 ml"),
        (["12 mm"], "number", "12 mm"),
        (["2600 mAh"], "number", "2600 mah"),
        (["32%", "32 %", "32 procent", "32 percent"], "percent", "32"),
        (["2 jaar", "2 years", "twee jaar", "two years"], "duration", "2 year"),
        (["1 jaar", "1 year"], "duration", "1 year"),
        (["12 maanden", "12 months"], "duration", "12 month"),
        (["30 dagen", "30 days"], "duration", "30 day"),
        (["1 werkdag", "1 working day", "1 business day"], "duration", "1 workday"),
        (["10 werkdagen", "10 working days", "tien werkdagen"], "duration", "10 workday"),
        (["2026-11-26", "26 november 2026", "26-11-2026", "November 26, 2026", "26/11/2026"], "date", "2026-11-26"),
        (["22.00 uur", "22:00"], "date", "22:00"),
        (["klantenservice@kattenhuis.nl", "KlantenService@Kattenhuis.NL"], "email", "klantenservice@kattenhuis.nl"),
        (["020 123 4567", "020-1234567", "0201234567", "+31 20 123 4567", "+31 (0)20 1234567"], "phone", "0201234567"),
        (
            ["https://www.kattenhuis.nl/retour", "www.kattenhuis.nl/retour/", "kattenhuis.nl/retour"],
            "link",
            "kattenhuis.nl/retour",
        ),
        (["KH-LB-1003", "kh-lb-1003"], "code", "KH-LB-1003"),
        (["AutoBox 9"], "model", "autobox 9"),
        (["Classic 55"], "model", "classic 55"),
        (["Flow 2"], "model", "flow 2"),
    ],
)
def test_spellings_of_one_fact_have_one_canonical_value(texts, kind, value):
    for text in texts:
        assert only(text) == (kind, value), text


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("54,95", "54.95"),
        ("54.95", "54.95"),
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("2.8", "2.8"),
        ("0,125", "0.125"),  # a leading zero: decimals, not thousands
        ("119,00", "119"),
        ("twee", "2"),
        ("één", "1"),
        ("twaalf", "12"),
        ("thirty", "30"),
    ],
)
def test_canonical_number(raw, value):
    assert canonical_number(raw) == value


def test_units_are_never_converted_into_each_other():
    assert only("12 maanden") != only("1 jaar")
    assert only("9 kg") != only("9 l")
    assert only("1000 g") != only("1 kg")


@pytest.mark.parametrize(
    ("texts", "kind", "value"),
    [
        (["10 tot 15 liter", "10-15 liter", "10 – 15 l", "10 to 15 litres", "10 l tot 15 l"], "number", "10-15 l"),
        (["tussen 10 en 15 liter", "between 10 and 15 litres", "10—15 liter"], "number", "10-15 l"),
        (["2 tot 3 weken", "2 to 3 weeks", "2-3 weeks", "twee tot drie weken"], "duration", "2-3 week"),
        (["2 t/m 3 weken", "2 tot en met 3 weken"], "duration", "2-3 week"),
        (["1 tot 10 porties", "1 to 10 portions", "1-10 porties"], "number", "1-10"),
        (["€10 tot en met €1.000", "€ 10 t/m € 1.000", "10 tot 1000 euro", "€10-1000"], "money", "10-1000"),
        (["tussen 3 en 4 liter", "between 3 and 4 litres", "3 à 4 liter"], "number", "3-4 l"),
        (["5 à 6 liter", "5 tot 6 l"], "number", "5-6 l"),
        (["10-15%", "10 tot 15 procent", "10% tot 15%"], "percent", "10-15"),
    ],
)
def test_a_range_is_one_fact(texts, kind, value):
    for text in texts:
        assert only(text) == (kind, value), text


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("58 x 45 x 46 cm", ["58 cm", "45 cm", "46 cm"]),  # dimensions: one amount each
        ("21 x 23 cm", ["21 cm", "23 cm"]),
        ("12 x 85 g", ["12 g", "85 g"]),
        ("2 of 3 weken", ["2 week", "3 week"]),  # alternatives
        ("In 2026 - 3 katten", ["2026", "3"]),  # no range runs downwards
        ("Inhoud 9 liter - 12 katten", ["9 l", "12"]),
        ("9 kg tot 10 l", ["9 kg", "10 l"]),  # no range across units
        ("Prijzen: €10 en €15", ["10", "15"]),  # "en" joins a range only after "tussen"
        ("Telefoon: 020-1234567; maandag tot en met vrijdag 09.00–17.30 uur", ["0201234567", "09:00", "17:30"]),
    ],
)
def test_what_is_no_range_stays_separate_facts(text, values):
    assert [f.value for f in extract_facts(text)] == values


def test_a_range_keeps_its_text_and_place():
    text = "Een afvalzak van 10 tot 15 liter past."
    assert [(f.raw, text[s:e]) for f, s, e in fact_spans(text)] == [("10 tot 15 liter", "10 tot 15 liter")]
    assert [f.raw for f in extract_facts("tussen 3 en 4 liter")] == ["3 en 4 liter"]


def test_a_unit_in_the_label_applies_to_the_bare_numbers_after_it():
    line = extract_facts("Afmetingen (cm): 58 x 45 x 46")
    assert [f.value for f in line] == ["58 cm", "45 cm", "46 cm"]
    assert all(supported_by(f, line) for f in extract_facts("58 x 45 x 46 cm"))
    assert [f.value for f in extract_facts("Maat (cm): 40-50")] == ["40-50 cm"]


def test_ambiguous_words_are_no_numbers():
    assert extract_facts("Ik heb een kat en een kattenbak.") == []
    assert extract_facts("Which one do you need?") == []
    assert extract_facts("Je hebt ten minste vulling nodig.") == []
    assert extract_facts("Beveiligd met 3D Secure.") == []


def test_may_is_a_month_only_with_a_year():
    assert [f.kind for f in extract_facts("The AutoBox 9 may not be used outside.")] == ["model"]
    assert only("5 May 2026") == ("date", "2026-05-05")
    assert only("5 mei") == ("date", "05-05")


def test_words_before_a_number_that_are_no_product_line():
    assert [(f.kind, f.value) for f in extract_facts("Binnen 30 dagen")] == [("duration", "30 day")]
    assert [(f.kind, f.value) for f in extract_facts("In 2026 kwamen er 3 bij")] == [
        ("number", "2026"),
        ("number", "3"),
    ]


def test_a_line_with_several_facts():
    facts = extract_facts("Telefoon: 020-1234567; maandag tot en met vrijdag 09.00–17.30 uur")
    assert [(f.kind, f.value) for f in facts] == [("phone", "0201234567"), ("date", "09:00"), ("date", "17:30")]
    assert facts[0].raw == "020-1234567"


@pytest.mark.parametrize(
    ("claim", "line", "match"),
    [
        ("55", "Inhoud: 55 liter", True),  # a bare number: the same number with any unit
        ("55 liter", "Inhoud: 55 liter", True),
        ("55 liter", "Classic 55", False),  # a number with a unit needs that unit
        ("9 kg", "Inhoud afvalbak: 9 liter", False),
        ("54,95", "Prijs: € 54,95", True),
        ("€ 54,95", "Prijs: 54,95", False),  # a price needs a price
        ("26 november", "2026-11-26", True),  # a date without a year: that day in any year
        ("27 november", "2026-11-26", False),
        ("november 2026", "Prijs volgens de productfeed van: 2026-11-26", True),  # a month: any day in it
        ("december 2026", "2026-11-26", False),
        ("kattenhuis.nl", "klantenservice@kattenhuis.nl", True),  # a domain: a link or address on it
        ("kattenhuis.nl/retour", "https://www.kattenhuis.nl/garantie", False),
        ("020 123 4567", "Telefoon: +31 20 1234567", True),
        ("020 123 4568", "Telefoon: 020-1234567", False),
        ("10 liter", "een afvalzak van 10 tot 15 liter", False),  # one end of a range is no fact of its own
        ("15 liter", "een afvalzak van 10 tot 15 liter", False),
        ("10", "een afvalzak van 10 tot 15 liter", False),
        ("€ 10", "Van €10 tot en met €1.000", False),
        ("3 weken", "elke 2 tot 3 weken", False),
        ("10 tot 15 liter", "een afvalzak van 10 tot 15 liter", True),  # a range: the same range
        ("10-15 l", "een afvalzak van 10 tot 15 liter", True),
        ("2 to 3 weeks", "elke 2 tot 3 weken", True),
        ("2-3 weeks", "elke 2 tot 3 weken", True),
        ("between 3 and 4 litres", "3 tot 4 liter", True),
        ("10-15", "een afvalzak van 10 tot 15 liter", True),  # a bare range: the same range with any unit
        ("2 tot 4 weken", "elke 2 tot 3 weken", False),
        ("10 tot 15 liter", "Inhoud: 10 liter of 15 liter", False),  # two amounts are no range
        ("10 tot 15 liter", "10 tot 15 kg", False),
    ],
)
def test_fact_matches(claim, line, match):
    (fact,) = extract_facts(claim)
    assert supported_by(fact, extract_facts(line)) is match


def test_fact_matches_compares_kinds():
    assert fact_matches(Fact("money", "49", "€49"), Fact("money", "49", "49 euro"))
    assert not fact_matches(Fact("money", "49", "€49"), Fact("percent", "49", "49%"))


def test_normalise_text():
    assert normalise_text("  Één   Kattenbak\tMAÏS ") == "een kattenbak mais"
