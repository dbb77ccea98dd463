"""Questions the catalogue cannot answer by design, recognised before retrieval.

Three kinds get a fixed answer with the route to customer service instead of a search:

- ``order``: the status of one specific order ("Waar is mijn bestelling 12345?": an order number or "my
  order", and a status cue such as "waar", "verzonden", "annuleren"). The assistant cannot
  see orders (order look-up is out of scope), and a shipping-policy answer would read as a status. An order
  not placed yet ("als ik vandaag bestel") or not being at home for a delivery is a policy question.
- ``other_species``: products for animals other than cats ("Verkopen jullie hondenvoer?"). The shop
  sells cat supplies only; retrieval would find the nearest cat product and the model would offer it.
- ``unknown_variant``: a model number the catalogue does not have of a product line it does have
  ("Wat kost de PurrClean AutoBox 12?" when only the AutoBox 9 exists), or a named variant of a brand or line
  it has ("VitaKat Senior" next to VitaKat Adult and Kitten, "PurrClean AutoBox Pro"). Retrieval would find
  the sibling and the model would quote its price. The product lines come from the index's own titles
  (``product_lines``), the brands, names and words from its product chunks (``product_names``), never from a
  list in the code.

Everything else is ``catalogue``. The rules are deliberately narrow: a general question about orders
("Hoe snel wordt een bestelling bezorgd?") or one that also names a cat stays ``catalogue``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from chains.language import Language
from chains.lexicon import one_edit
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
# Not being at home for a delivery ("als de bezorger me niet thuis treft, waar ligt mijn pakket?"): a policy question.
_NOT_HOME = re.compile(r"\bniet\s+thuis\b|\bnot\s+(?:at\s+)?home\b", re.I)
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
    if not number and (_FUTURE_ORDER.search(question) or _NOT_HOME.search(question)):  # "if I order today", "not home"
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


# Words and numbers with their case and position ("AutoBox", "9"); letters in any script.
_TOKEN = re.compile(r"[^\W\d_]+|\d+")
_JOINER = re.compile(r"[\s-]+")  # what may stand between the words of one product name ("AquaPaws-drinkfontein")
MIN_NAME_LETTERS = 2  # a shorter word after a brand ("I") is no variant name
MIN_STEM = 4  # the shortest catalogue word that counts as a compound head or a stem of the question's word
MAX_ENDING = 2  # "fonteinen", "filters": a catalogue word plus at most this many letters is an inflection of it
MIN_TYPO = 5  # the shortest word that may be a typo or a stem of a catalogue word ("steal" for "steel")
CATALOGUE_LANGUAGE: Language = "nl"  # the language of the catalogue's words: only its questions are checked for names


@dataclass(frozen=True)
class ProductNames:
    """The catalogue's brands and named product lines, each with the words of its products' names and texts."""

    words: Mapping[tuple[str, ...], frozenset[str]]  # brand or line ("vitakat",) → every word of its products
    name_words: Mapping[tuple[str, ...], frozenset[str]]  # → the words of its products' names ("adult", "kip")
    title_words: frozenset[str]  # every word of every product title: the catalogue's own kinds of product


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def product_names(products: Iterable[tuple[str, str, str, str]]) -> ProductNames:
    """(brand, name, title, text) of each product chunk → its brand and every CamelCase name word ("AutoBox")."""
    words: dict[tuple[str, ...], set[str]] = {}
    names: dict[tuple[str, ...], set[str]] = {}
    titles: set[str] = set()
    for brand, name, title, text in products:
        anchors = [tuple(_tokens(brand))] if brand.strip() else []
        anchors += [(w.lower(),) for w in _TOKEN.findall(name) if w[1:] != w[1:].lower()]
        for anchor in anchors:
            words.setdefault(anchor, set()).update(_tokens(f"{title} {name} {text}"))
            names.setdefault(anchor, set()).update(_tokens(name))
        titles.update(_tokens(title))
    return ProductNames(
        {a: frozenset(w) for a, w in words.items()}, {a: frozenset(n) for a, n in names.items()}, frozenset(titles)
    )


def _known(word: str, vocabulary: frozenset[str]) -> bool:
    """The word is the vocabulary's, a compound or inflection of one of its words, or a typo of one."""
    return word in vocabulary or any(
        (len(word) >= MIN_STEM and v.endswith(word))  # "fontein" in "drinkfontein"
        or (len(v) >= MIN_STEM and (word.endswith(v) or (word.startswith(v) and len(word) - len(v) <= MAX_ENDING)))
        or (len(word) >= MIN_TYPO and (v.startswith(word) or one_edit(word, v)))  # "veilig(heid)", "steal"
        for v in vocabulary
    )


def unknown_name(question: str, names: ProductNames) -> str | None:
    """The first "<brand or line> <name>" of the question whose name the catalogue lacks ("VitaKat Senior").

    After a brand or CamelCase line word (and the catalogue's own name words that follow it: "PurrClean AutoBox"),
    the next word is a variant name the catalogue lacks when it is written with a capital ("Senior", "Pro", "XL")
    or is a kind of product the catalogue has for other brands only ("AquaPaws kattenbak"), and it is not one of
    the words of that brand's or line's products. A model number there is ``unknown_variant``'s.
    """
    found = list(_TOKEN.finditer(question))
    for start in range(len(found)):
        for anchor, vocabulary in names.words.items():
            end = start + len(anchor)
            if tuple(m.group().lower() for m in found[start:end]) != anchor:
                continue
            while end < len(found) and _adjacent(question, found[end - 1], found[end]):
                word = found[end].group()
                if word.isdigit() or word.lower() not in names.name_words[anchor]:
                    break
                end += 1
            if end == len(found) or not _adjacent(question, found[end - 1], found[end]):
                continue
            word = found[end].group()
            if word.isdigit() or len(word) < MIN_NAME_LETTERS or (word.lower(),) in names.words:  # another brand
                continue
            if _known(word.lower(), vocabulary):
                continue
            if word[0].isupper() or word.lower() in names.title_words:
                return question[found[start].start() : found[end].end()]
    return None


def _adjacent(question: str, left: re.Match[str], right: re.Match[str]) -> bool:
    return bool(_JOINER.fullmatch(question[left.end() : right.start()]))


def classify_scope(
    question: str,
    lines: ProductLines | None = None,
    names: ProductNames | None = None,
    language: Language = CATALOGUE_LANGUAGE,
) -> Scope:
    """Which fixed route, if any, the question takes before retrieval.

    ``lines`` and ``names``: the catalogue's product lines and product names, built from the index. Names are
    checked in questions in the catalogue's language only: its words cannot vouch for an English "AquaPaws
    Fountain", which would look like an unknown variant.
    """
    if is_order_question(question):
        return "order"
    if names_other_species(question):
        return "other_species"
    if lines and unknown_variant(question, lines):
        return "unknown_variant"
    if names and language == CATALOGUE_LANGUAGE and unknown_name(question, names):
        return "unknown_variant"
    return "catalogue"
