"""chains.claims: scripted answers against real catalogue lines; the sentence splitter's streaming contract."""

from __future__ import annotations

import pytest

from chains.claims import DEFAULT_MIN_SUPPORT, CatalogueNames, ClaimChecker, split_sentences
from core.evidence import EvidenceLine

PRODUCTS = {
    "CatCave Classic 40": "catcave-classic-40",
    "CatCave Classic 55": "catcave-classic-55",
    "PurrClean AutoBox 9": "purrclean-autobox-9",
    "AquaPaws Flow 2": "aquapaws-flow-2",
    "AquaPaws Steel 3": "aquapaws-steel-3",
    "AquaPaws Filterset 6": "aquapaws-filterset-6",
    "FeedWise Smart 4": "feedwise-smart-4",
    "KlimMax Tower 150": "klimmax-tower-150",
    "VitaKat Adult Kip 7 kg": "vitakat-adult-kip-7kg",
    "VitaKat Kitten Kip 2 kg": "vitakat-kitten-2kg",
    "Smulpoes Natvoer Mix in saus 12 x 85 g": "smulpoes-natvoer-12x85g",
    "KlonterGoed Plantaardig 10 l": "klontergoed-plantaardig-10l",
}
BRANDS = ["CatCave", "PurrClean", "AquaPaws", "FeedWise", "VitaKat", "Smulpoes", "KlonterGoed", "KlimMax"]
NAMES = CatalogueNames(PRODUCTS, BRANDS)
TITLES = {
    "catcave-classic-40": "CatCave Classic 40 overdekte kattenbak 40 liter",
    "catcave-classic-55": "CatCave Classic 55 overdekte kattenbak 55 liter",
    "purrclean-autobox-9": "PurrClean AutoBox 9 zelfreinigende kattenbak",
    "aquapaws-flow-2": "AquaPaws Flow 2 drinkfontein 2 liter kunststof",
    "feedwise-smart-4": "FeedWise Smart 4 automatische voerautomaat met app",
    "retourneren": "Retourneren en bedenktijd",
    "garantie": "Garantievoorwaarden",
    "klantenservice": "Contact met de klantenservice",
    "verzending": "Verzending en levering",
}
PRODUCT_OF = {doc_id: name for name, doc_id in PRODUCTS.items()}


def line(doc_id: str, text: str, n: int = 0) -> EvidenceLine:
    return EvidenceLine(doc_id=doc_id, line=n, title=TITLES[doc_id], text=text, product=PRODUCT_OF.get(doc_id, ""))


C55 = [
    line("catcave-classic-55", "Product: CatCave Classic 55", 1),
    line("catcave-classic-55", "Prijs: € 54,95", 5),
    line("catcave-classic-55", "Inhoud: 55 liter", 6),
    line("catcave-classic-55", "Voorraad: 27 op voorraad", 9),
]
C40 = [line("catcave-classic-40", "Prijs: € 39,95", 5), line("catcave-classic-40", "Inhoud: 40 liter", 6)]
AUTOBOX = [
    line("purrclean-autobox-9", "Prijs: € 349,95", 5),
    line("purrclean-autobox-9", "Inhoud afvalbak: 9 liter", 20),
    line("purrclean-autobox-9", 'App "PurrClean Home" voor iOS en Android via wifi (2,4 GHz).', 14),
]
FLOW = [
    line("aquapaws-flow-2", "Mag de AquaPaws Flow 2 in de vaatwasser?", 30),
    line("aquapaws-flow-2", "De Flow 2 is niet vaatwasserbestendig: was het reservoir met de hand.", 24),
]
POLICIES = [
    line("retourneren", "Je kunt je bestelling binnen 30 dagen retourneren.", 2),
    line("garantie", "Elektrische apparaten: 2 jaar", 3),
    line("klantenservice", "Telefoon: 020-1234567; Bereikbaarheid maandag tot en met vrijdag 09.00–17.30 uur", 4),
    line("verzending", "Nederland: Bestelbedrag onder de drempel €4,95; Gratis verzending vanaf €49", 5),
]
FEEDWISE = [line("feedwise-smart-4", "Prijs: € 89,95", 5)]
EVIDENCE = C55 + AUTOBOX + FLOW + POLICIES + FEEDWISE
CHECKER = ClaimChecker(names=NAMES)


def verdict(sentence: str, evidence: list[EvidenceLine] = EVIDENCE, language: str = "nl"):
    return CHECKER.check(sentence, evidence, language=language)


@pytest.mark.parametrize(
    ("sentence", "supporting", "language"),
    [
        ("De CatCave Classic 55 kost € 54,95.", "Prijs: € 54,95", "nl"),
        ("The CatCave Classic 55 costs €54.95.", "Prijs: € 54,95", "en"),
        ("De Classic 55 heeft een inhoud van 55 liter.", "Inhoud: 55 liter", "nl"),
        ("De afvalbak heeft een inhoud van 9 liter.", "Inhoud afvalbak: 9 liter", "nl"),
        ("The waste drawer of the AutoBox 9 holds 9 litres.", "Inhoud afvalbak: 9 liter", "en"),
        ("You can return your order within 30 days.", "Je kunt je bestelling binnen 30 dagen retourneren.", "en"),
        ("Bel de klantenservice op 020 123 4567.", POLICIES[2].text, "nl"),
        ("De FeedWise Smart 4 heeft 2 jaar garantie.", "Elektrische apparaten: 2 jaar", "nl"),  # a policy line
        ("The Flow 2 is not dishwasher safe.", FLOW[1].text, "en"),
        ("- Gratis verzending vanaf € 49,-", POLICIES[3].text, "nl"),  # a list item
        ("Ja, we verkopen de CatCave Classic 55.", "Product: CatCave Classic 55", "nl"),
        ("De CatCave Classic 55 is op voorraad.", "Voorraad: 27 op voorraad", "nl"),
        ("De app PurrClean Home werkt via wifi.", AUTOBOX[2].text, "nl"),  # a name the evidence itself quotes
    ],
)
def test_faithful_restatements_pass(sentence, supporting, language):
    result = verdict(sentence, language=language)
    assert result.ok, result
    assert result.reason == "supported"
    assert result.line is not None and result.line.text == supporting
    assert result.score >= DEFAULT_MIN_SUPPORT


@pytest.mark.parametrize(
    ("sentence", "reason", "detail"),
    [
        ("De CatCave Classic 55 kost € 59,95.", "unsupported_fact", "€ 59,95"),  # an invented price
        ("We hebben ook de VitaKat Senior.", "unknown_product", "VitaKat Senior"),  # an invented product
        ("Wat dacht je van de PurrClean AutoBox 12?", "unknown_product", "PurrClean AutoBox 12"),
        ("De AutoBox 12 is stiller.", "unknown_product", "AutoBox 12"),
        ("De afvalbak is 9 kg.", "unsupported_fact", "9 kg"),  # the wrong unit
        ("Bel ons op 020-7654321.", "unsupported_fact", "020-7654321"),  # an invented phone number
        ("De CatCave Classic 40 kost € 54,95.", "wrong_product", "€ 54,95"),  # a sibling's price
        ("De CatCave Classic 40 heeft een inhoud van 55 liter.", "wrong_product", "55 liter"),
        ("De FeedWise Smart 4 kost €4,95.", "wrong_product", "€4,95"),  # a price from a policy line
        ("Ja, we verkopen ook silicakorrels.", "availability", "we verkopen"),
        ("Ja, dat hebben we.", "availability", "dat hebben we"),
        ("Yes, we sell the KlimMax Tower 150.", "availability", "we sell"),  # a product without evidence
        ("Je kunt je bestelling niet retourneren.", "negation", ""),  # a negation flip
        ("The Flow 2 is dishwasher safe.", "negation", ""),
        ("The FeedWise Smart 4 is cheaper on Amazon.", "comparison", "cheaper on"),
        ("Bij bol.com is de AutoBox 9 goedkoper.", "comparison", "bol.com"),
        ("De AutoBox 9 heeft een nachtstand.", "low_support", ""),
        ("De FeedWise Smart 4 kost € 89,95 en de CatCave Classic 55 kost € 54,95.", "unsupported_fact", ""),
    ],
)
def test_unsupported_sentences_fail(sentence, reason, detail):
    result = verdict(sentence)
    assert not result.ok
    assert result.reason == reason, result
    assert result.line is None
    assert detail in result.detail


BIN_BAG = EvidenceLine(
    doc_id="a", line=1, title="PurrClean AutoBox 9", text="In de afvalbak past een gewone afvalzak van 10 tot 15 liter."
)
REFRESH = EvidenceLine(
    doc_id="kattenbak-onderhoud",
    line=3,
    title="Kattenbak onderhouden",
    text="Klontvormende vulling (bentoniet of plantaardig): ververs de vulling volledig elke 2 tot 3 weken.",
)


@pytest.mark.parametrize(
    ("sentence", "evidence", "detail"),
    [
        ("De afvalbak is 10 liter.", BIN_BAG, "10 liter"),  # one end of a range
        ("10 liter.", BIN_BAG, "10 liter"),
        ("De afvalbak is 15 liter.", BIN_BAG, "15 liter"),
        ("In de afvalbak past een gewone afvalzak van 10 liter.", BIN_BAG, "10 liter"),
        ("In de afvalbak past een gewone afvalzak van 10 tot 20 liter.", BIN_BAG, "10 tot 20 liter"),
        ("Ververs de klontvormende vulling elke 3 weken.", REFRESH, "3 weken"),
        ("Ververs de klontvormende vulling elke 2 tot 4 weken.", REFRESH, "2 tot 4 weken"),
    ],
)
def test_one_end_of_a_range_or_another_range_is_unsupported(sentence, evidence, detail):
    result = ClaimChecker(min_support=0.9).check(sentence, [evidence])
    assert (result.ok, result.reason, result.detail) == (False, "unsupported_fact", detail)


@pytest.mark.parametrize(
    ("sentence", "evidence"),
    [
        ("In de afvalbak past een gewone afvalzak van 10 tot 15 liter.", BIN_BAG),
        ("In de afvalbak past een gewone afvalzak van 10-15 liter.", BIN_BAG),
        ("In de afvalbak past een gewone afvalzak van tussen 10 en 15 liter.", BIN_BAG),
        ("Ververs de klontvormende vulling elke 2-3 weken.", REFRESH),
        ("Ververs de klontvormende vulling elke twee tot drie weken.", REFRESH),
        ("Refresh clumping litter completely every 2 to 3 weeks.", REFRESH),
    ],
)
def test_a_range_is_supported_by_the_same_range(sentence, evidence):
    result = ClaimChecker().check(sentence, [evidence])
    assert (result.ok, result.line) == (True, evidence), result


def test_a_range_is_not_supported_by_a_single_amount():
    result = verdict("De afvalbak van de AutoBox 9 is 9 tot 10 liter.")
    assert (result.ok, result.reason, result.detail) == (False, "unsupported_fact", "9 tot 10 liter")


def test_a_sibling_price_is_wrong_product_even_with_the_siblings_own_lines():
    result = verdict("De CatCave Classic 40 kost € 54,95.", C55 + C40)
    assert (result.ok, result.reason) == (False, "wrong_product")
    assert verdict("De CatCave Classic 40 kost € 39,95.", C55 + C40).line == C40[0]


def test_a_question_line_supports_nothing():
    result = verdict("De AquaPaws Flow 2 mag in de vaatwasser.", FLOW[:1])
    assert (result.ok, result.reason) == (False, "low_support")


@pytest.mark.parametrize("sentence", ["", "   ", "...", "**"])
def test_empty_sentences_fail(sentence):
    assert verdict(sentence).reason == "empty"
    assert not verdict(sentence).ok


def test_courtesy_sentences_pass_without_a_line_and_greetings_do_not():
    for sentence in ["Graag gedaan!", "Fijne dag!", "Have a nice day.", "Ik help je graag."]:
        result = verdict(sentence)
        assert (result.ok, result.reason, result.line) == (True, "supported", None)
    assert not verdict("Hallo!").ok


def test_min_support_is_a_constructor_argument():
    sentence = "De AutoBox 9 kost € 349,95 en is erg populair bij katers."
    assert CHECKER.check(sentence, EVIDENCE).reason == "low_support"
    assert ClaimChecker(names=NAMES, min_support=0.0).check(sentence, EVIDENCE).ok


def test_without_catalogue_names_the_evidence_products_are_known():
    checker = ClaimChecker()
    assert checker.check("De CatCave Classic 55 kost € 54,95.", EVIDENCE).ok
    assert checker.check("De CatCave Classic 60 kost € 54,95.", EVIDENCE).reason == "unknown_product"


def test_check_answer_keeps_the_passing_prefix():
    answer = (
        "De CatCave Classic 55 kost € 54,95. Hij heeft een inhoud van 55 liter. "
        "Bij Zooplus is hij goedkoper. Je kunt hem binnen 30 dagen retourneren."
    )
    result = CHECKER.check_answer(answer, EVIDENCE, language="nl")
    assert result.passed == ["De CatCave Classic 55 kost € 54,95.", "Hij heeft een inhoud van 55 liter."]
    assert result.failed is not None and result.failed.reason == "comparison"
    assert [v.reason for v in result.verdicts] == ["supported", "supported", "comparison"]
    assert [line.text for line in result.supporting] == ["Prijs: € 54,95", "Inhoud: 55 liter"]


def test_check_answer_without_final_leaves_the_rest_unchecked():
    result = CHECKER.check_answer("De CatCave Classic 55 kost € 54,95. Hij kost ook € 1", EVIDENCE, final=False)
    assert (result.passed, result.failed) == (["De CatCave Classic 55 kost € 54,95."], None)
    assert CHECKER.check_answer("De CatCave Classic 55 kost € 54,95. Hij kost ook € 1", EVIDENCE).failed


def test_catalogue_names_mentions():
    assert NAMES.mentions("Is de CatCave Classic 55 groot genoeg?") == ["catcave-classic-55"]
    assert NAMES.mentions("De classic 55 en de Classic 40") == ["catcave-classic-55", "catcave-classic-40"]
    assert NAMES.mentions("De zelfreinigende AutoBox 9") == ["purrclean-autobox-9"]
    assert NAMES.mentions("Geef je kat VitaKat Adult") == ["vitakat-adult-kip-7kg"]
    assert NAMES.mentions("De Classic 550 bestaat niet") == []
    assert "catcave-classic-55" not in NAMES.mentions("De CatCave Classic 40")


def test_catalogue_names_unknown_products():
    assert NAMES.unknown_products("We hebben ook de VitaKat Senior.") == ["VitaKat Senior"]
    assert NAMES.unknown_products("De CatCave Classic 60 is nieuw") == ["CatCave Classic 60"]
    assert NAMES.unknown_products("De AutoBox 12") == ["AutoBox 12"]
    assert NAMES.unknown_products("De CatCave Classic is een overdekte kattenbak") == []  # a product line
    assert NAMES.unknown_products("VitaKat Adult Kip en VitaKat Kitten") == []
    assert NAMES.unknown_products("De PurrClean AutoBox 9 en de AquaPaws Filterset 6") == []


STREAMED = (
    "De CatCave Classic 55 kost € 54,95. Hij weegt 2.8 kg, bijv. met een kap. Mail klantenservice@kattenhuis.nl "
    "of kijk op https://www.kattenhuis.nl/retour. Kan hij in de vaatwasser? Nee! Het filter gaat o.a. ca. 3 "
    "maanden mee… Retourneren kan binnen 30 dagen.\n- Prijs: € 54,95\n- Inhoud: 55 liter\n\n1. Meld je retour aan"
    "\n2. Stuur het pakket terug"
)


def test_split_sentences_is_prefix_stable():
    whole, rest = split_sentences(STREAMED, final=False)
    for end in range(len(STREAMED) + 1):
        sentences, _rest = split_sentences(STREAMED[:end], final=False)
        assert sentences == whole[: len(sentences)], STREAMED[:end]
    assert whole == [
        "De CatCave Classic 55 kost € 54,95.",
        "Hij weegt 2.8 kg, bijv. met een kap.",
        "Mail klantenservice@kattenhuis.nl of kijk op https://www.kattenhuis.nl/retour.",
        "Kan hij in de vaatwasser?",
        "Nee!",
        "Het filter gaat o.a. ca. 3 maanden mee…",
        "Retourneren kan binnen 30 dagen.",
        "- Prijs: € 54,95",
        "- Inhoud: 55 liter",
        "1. Meld je retour aan",
    ]
    assert rest == "2. Stuur het pakket terug"
    assert split_sentences(STREAMED, final=True) == ([*whole, rest], "")


def test_split_sentences_feeding_the_rest_back_gives_the_same_sentences():
    for end in range(len(STREAMED) + 1):
        first, rest = split_sentences(STREAMED[:end], final=False)
        second, _rest = split_sentences(rest + STREAMED[end:], final=False)
        assert first + second == split_sentences(STREAMED, final=False)[0]


@pytest.mark.parametrize(
    "text",
    [
        "Het kost € 54,95 per stuk",
        "Hij weegt 2.8 kg en is 1.5 m hoog",
        "Gebruik bijv. KlonterGoed",
        "Vulling o.a. van KlonterGoed",
        "Het duurt ca. 30 minuten",
        "Bestel max. 3 stuks",
        "Zie nr. 5 in de lijst",
        "Use e.g. KlonterGoed",
        "Mail klantenservice@kattenhuis.nl voor vragen",
        "Kijk op www.kattenhuis.nl/retour voor het formulier",
    ],
)
def test_split_sentences_does_not_split_numbers_abbreviations_addresses(text):
    assert split_sentences(text + ". Daarna", final=False) == ([text + "."], "Daarna")


def test_split_sentences_needs_a_sentence_start_after_the_period():
    assert split_sentences("Ja. dat kan. Ook", final=False) == (["Ja. dat kan."], "Ook")
    assert split_sentences("Klaar.", final=False) == ([], "Klaar.")
    assert split_sentences("Klaar.  ", final=True) == (["Klaar."], "")
    assert split_sentences("   ", final=True) == ([], "")


EVIDENCE_WINDOW = 4


def test_every_statement_of_the_real_catalogue_is_supported_by_its_own_document():
    """No false rejection of a verbatim line: each line of each catalogue document, checked among its neighbours."""
    from pathlib import Path

    from ingest.lines import split_lines
    from ingest.loaders import iter_files, load_file

    root = Path(__file__).resolve().parents[3] / "data" / "catalogue"
    docs = [doc for path in iter_files(root) for doc in load_file(path)]
    products = {d.metadata["name"]: d.doc_id for d in docs if d.metadata.get("doc_type") == "product"}
    checker = ClaimChecker(names=CatalogueNames(products, {d.metadata.get("brand", "") for d in docs} - {""}))
    failures = []
    for doc in docs:
        product = doc.metadata.get("name", "") if doc.metadata.get("doc_type") == "product" else ""
        lines = [
            EvidenceLine(doc_id=doc.doc_id, line=x.line, title=doc.title, text=x.text, product=product)
            for x in split_lines(doc)
        ]
        for i, x in enumerate(lines):  # evidence as at run time: a few lines of the document, this one among them
            result = checker.check(x.text, lines[max(0, i - EVIDENCE_WINDOW) : i + EVIDENCE_WINDOW])
            if not x.text.endswith("?") and not result.ok:
                failures.append((doc.doc_id, x.text, result.reason))
    assert len(docs) > 10
    assert failures == []
