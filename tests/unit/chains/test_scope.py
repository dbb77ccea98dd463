"""chains.scope: which questions take a fixed route before retrieval, and which go on to the catalogue."""

from __future__ import annotations

import pytest

from chains.scope import classify_scope, is_order_question, names_other_species, product_lines, unknown_variant


@pytest.mark.parametrize(
    "question",
    [
        "Waar is mijn bestelling 12345?",
        "Is mijn pakket met ordernummer KH20260042 al verzonden?",
        "Ik wil de status van order 20261234 weten",
        "Where is my order? It has not arrived yet",  # "my order" + where
        "Wanneer komt mijn pakketje?",
        "Kan ik mijn bestelling nog annuleren?",
        "bestelnummer 88776655: wanneer komt het?",
        "kh-20260042 is nog steeds niet bezorgd",
    ],
)
def test_questions_about_one_order_take_the_order_route(question):
    assert is_order_question(question)
    assert classify_scope(question) == "order"


@pytest.mark.parametrize(
    "question",
    [
        "Hoe snel wordt een bestelling in Nederland bezorgd?",
        "Wat zijn de verzendkosten in Nederland voor een bestelling onder de €49?",
        "Ik woon in België en bestel alleen de AquaPaws Steel 3. Wat betaal ik in totaal?",
        "How much does shipping to Belgium cost?",
        "Hoe lang duurt het voordat ik mijn geld terugkrijg na een retour?",  # "mijn" without an order word
        "Wat kost de KlimMax Tower 150?",
        "Ik heb ordernummer KH12345678: hoe kan ik retourneren?",  # a number, but a returns-policy question
        "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?",
        "When will my order arrive if I order today?",  # an order not placed yet: delivery times, a policy
        "Wanneer komt mijn pakket als ik vandaag voor 22:00 bestel?",
        "Als ik nu bestel, wanneer wordt mijn bestelling dan verzonden?",
    ],
)
def test_general_questions_stay_in_the_catalogue(question):
    assert classify_scope(question) == "catalogue"


@pytest.mark.parametrize(
    "question",
    [
        "Verkopen jullie ook hondenvoer?",
        "Hebben jullie een aquarium voor goudvissen?",
        "Do you sell dog leashes?",
        "Hebben jullie een hok voor mijn konijn?",
        "Welk voer is goed voor een parkiet?",
    ],
)
def test_products_for_other_animals_take_the_species_route(question):
    assert names_other_species(question)
    assert classify_scope(question) == "other_species"


@pytest.mark.parametrize(
    "question",
    [
        "Kan mijn kat uit dezelfde fontein drinken als mijn hond?",  # a cat is named: the catalogue may answer
        "Is de kattenbak ook geschikt voor een kitten?",
        "Heeft de VitaKat Adult Kip vis erin?",  # "VitaKat" names the cat brand
        "Hebben jullie speelgoedmuizen?",  # toy mice are cat toys: not another species
        "Wat is de visie van jullie winkel?",  # "visie" is not "vis"
    ],
)
def test_cat_questions_are_not_sent_away(question):
    assert classify_scope(question) == "catalogue"


TITLES = [
    "PurrClean AutoBox 9 zelfreinigende kattenbak",
    "CatCave Classic 40 overdekte kattenbak 40 liter",
    "CatCave Classic 55 overdekte kattenbak 55 liter",
    "AquaPaws Flow 2 drinkfontein 2 liter kunststof",
    "VitaKat Adult Kip droogvoer 7 kg",
    "Verzending en levering",
]


def test_product_lines_come_from_the_titles():
    lines = product_lines(TITLES)
    assert lines["autobox"] == {"9"} and lines["purrclean"] == {"9"}
    assert lines["classic"] == {"40", "55"} and lines["flow"] == {"2"}
    assert "droogvoer" not in lines and "kip" not in lines  # "droogvoer 7 kg" is not a model number


@pytest.mark.parametrize(
    ("question", "found"),
    [
        ("Wat kost de PurrClean AutoBox 12?", "AutoBox 12"),
        ("Hebben jullie de catcave classic 70?", "classic 70"),
        ("Wat kost de CatCave Classic 55?", None),
        ("Hoeveel liter heeft de AquaPaws Flow 2 voor 3 katten?", None),  # "katten" is no product line
        ("Hoe vaak moet ik de afvalbak van de autobox legen met 2 katten", None),
        ("Wat zijn de verzendkosten voor 2 zakken?", None),
    ],
)
def test_unknown_model_numbers_of_known_lines_are_found(question, found):
    lines = product_lines(TITLES)
    assert unknown_variant(question, lines) == found
    assert classify_scope(question, lines) == ("unknown_variant" if found else "catalogue")
    assert classify_scope(question) == "catalogue"  # without the catalogue's lines there is nothing to compare
