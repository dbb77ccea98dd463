"""Questions the catalogue cannot answer by design, recognised before retrieval.

Three kinds get a fixed answer with the route to customer service instead of a search:

- ``order``: the status of one specific order ("Waar is mijn bestelling 12345?": an order number or "my
  order", and a status cue such as "waar", "verzonden", "annuleren"). The assistant cannot
  see orders (order look-up is out of scope), and a shipping-policy answer would read as a status.
- ``other_species``: products for animals other than cats ("Verkopen jullie hondenvoer?"). The shop
  sells cat supplies only; retrieval would find the nearest cat product and the model would offer it.
- ``unknown_variant``: a model number the catalogue does not have of a product line it does have
  ("Wat kost de PurrClean AutoBox 12?" when only the AutoBox 9 exists). Retrieval would find the AutoBox 9
  and the model would quote its price. The product lines come from the index's own titles
  (``product_lines``), never from a list in the code.

Everything else is ``catalogue``. The rules are deliberately narrow: a general question about orders
("Hoe snel wordt een bestelling bezorgd?") or one that also names a cat stays ``catalogue``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal

from guards.redact import LABELLED_ORDER_NUMBER, SHOP_ORDER_NUMBER

Scope = Literal["catalogue", "order", "other_species", "unknown_variant"]
ProductLines = Mapping[str, frozenset[str]]  # a product-line word ("autobox") → its model numbers ({"9"})

# "my order/parcel" together with a status cue: where is it, has it shipped, when does it come, cancel it.
_MY_ORDER = re.compile(
    r"\b(?:mijn|m'n|onze|my|our)\s+(?:\w+\s+)?(?:bestelling|order|pakket(?:je)?|zending|levering|package|parcel|"
    r"shipment|delivery)\b",
    re.I,
)
_STATUS = re.compile(
    r"\b(?:waar|where|status|verzonden|verstuurd|shipped|sent|track|trace|tracking|volgen|wanneer\s+komt|"
    r"when\s+will|nog\s+(?:steeds\s+)?niet|not\s+yet|still\s+not|annuleren|annuleer|cancel|wijzigen)\b",
    re.I,
)
# An order not placed yet ("if I order today", "als ik nu bestel"): a delivery-time question, a policy.
_FUTURE_ORDER = re.compile(
    r"\b(?:if|when|once)\s+(?:i|we)\s+(?:order|buy)\b|\b(?:als|wanneer|zodra)\s+(?:ik|we|wij)\s+(?:[^\s?!]+\s+){0,4}?"
    r"(?:bestel|bestellen|koop|kopen)\b|\b(?:vandaag|nu)\s+(?:bestel|besteld|bestelt)\b|\border(?:ed)?\s+today\b",
    re.I,
)
_WORD = re.compile(r"[a-zà-ÿ']+", re.I)
# Cat words (and their compounds: kattenbak, kattenvoer, cat's): any of them keeps a question in scope, as does
# "kat" or "poes" anywhere in a word (brand names such as VitaKat). A false match only keeps a question here.
CAT_PREFIXES = ("kat", "poes", "kitten", "kater", "cat", "kitty")
CAT_INFIXES = ("kat", "poes")
# Other animals: whole words, or the start of a compound ("hondenvoer", "konijnenhok", "dogfood").
OTHER_SPECIES_WORDS = frozenset(
    {"vis", "vissen", "visvoer", "vogel", "vogels", "vogelvoer", "vogelkooi", "vogelzaad", "pup", "pups", "muizen"}
)
OTHER_SPECIES_PREFIXES = (
    "hond",
    "puppy",
    "goudvis",
    "aquarium",
    "parkiet",
    "kanarie",
    "konijn",
    "cavia",
    "hamster",
    "knaagdier",
    "paard",
    "reptiel",
    "schildpad",
    "dog",
    "puppies",
    "fish",
    "goldfish",
    "bird",
    "parrot",
    "rabbit",
    "guinea",
    "rodent",
    "horse",
    "reptile",
    "turtle",
    "tortoise",
)


def is_order_question(question: str) -> bool:
    """An order number or "my order/parcel", with a status cue ("how do I return order 123?" is a policy question)."""
    number = SHOP_ORDER_NUMBER.search(question) or LABELLED_ORDER_NUMBER.search(question)  # as guards.redact sees one
    if not number and _FUTURE_ORDER.search(question):  # "when will my order arrive if I order today?"
        return False
    return bool((number or _MY_ORDER.search(question)) and _STATUS.search(question))


def names_other_species(question: str) -> bool:
    """Another animal is named and no cat is."""
    words = [w.lower() for w in _WORD.findall(question)]
    if any(w.startswith(CAT_PREFIXES) or any(i in w for i in CAT_INFIXES) for w in words):
        return False
    return any(w in OTHER_SPECIES_WORDS or w.startswith(OTHER_SPECIES_PREFIXES) for w in words)


# In a title: a run of capitalised words right before a model number ("PurrClean AutoBox 9", "CatCave Classic 40").
_TITLE_MODEL = re.compile(r"((?:\b[A-Z][A-Za-z]+\s+)+)(\d+)\b")
# In a question: any word followed by a number ("autobox 12", "Flow 3").
_QUESTION_MODEL = re.compile(r"\b([A-Za-z]+)\s+(\d+)\b")


def product_lines(titles: Iterable[str]) -> dict[str, frozenset[str]]:
    """Each capitalised word before a model number in a title → every model number it is seen with."""
    lines: dict[str, set[str]] = {}
    for title in titles:
        for words, number in _TITLE_MODEL.findall(title):
            for word in words.split():
                lines.setdefault(word.lower(), set()).add(number)
    return {w: frozenset(n) for w, n in lines.items()}


def unknown_variant(question: str, lines: ProductLines) -> str | None:
    """The first "<product-line word> <number>" of the question whose number that line does not have."""
    for word, number in _QUESTION_MODEL.findall(question):
        known = lines.get(word.lower())
        if known and number not in known:
            return f"{word} {number}"
    return None


def classify_scope(question: str, lines: ProductLines | None = None) -> Scope:
    """Which fixed route, if any, the question takes before retrieval (``lines``: the catalogue's product lines)."""
    if is_order_question(question):
        return "order"
    if names_other_species(question):
        return "other_species"
    if lines and unknown_variant(question, lines):
        return "unknown_variant"
    return "catalogue"
