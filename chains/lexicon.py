"""Words of the claim check (``chains.claims``, ``chains.normalize``): word lists and lexical matching.

All entries are normalised (``chains.normalize.normalise_text``: case-folded, accents stripped). The bilingual
lexicon maps an English shop word (or a Dutch synonym) to the Dutch words a catalogue line uses for it, so an
English answer can be compared with the Dutch evidence lines; multi-word keys ("litter box") are matched first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Set


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Measure units: every spelling → its canonical symbol.
MEASURE_UNITS: dict[str, str] = {
    **dict.fromkeys(("l", "ltr", "liter", "liters", "litre", "litres", "lt"), "l"),
    **dict.fromkeys(("ml", "milliliter", "milliliters", "millilitre", "millilitres"), "ml"),
    **dict.fromkeys(("kg", "kilo", "kilos", "kilo's", "kilogram", "kilograms", "kilogramme"), "kg"),
    **dict.fromkeys(("g", "gr", "gram", "grams", "gramme", "grammes"), "g"),
    **dict.fromkeys(("mg", "milligram", "milligrams"), "mg"),
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), "cm"),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), "mm"),
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), "m"),
    **dict.fromkeys(("kcal", "kilocalorie", "kilocalories", "kilocalorieen"), "kcal"),
    **dict.fromkeys(("w", "watt"), "w"),
    **dict.fromkeys(("v", "volt"), "v"),
    **dict.fromkeys(("mah",), "mah"),
    **dict.fromkeys(("db", "decibel"), "db"),
    **dict.fromkeys(("ghz",), "ghz"),
    **dict.fromkeys(("°c", "graden", "degrees"), "°c"),
}
# Duration units: every spelling (Dutch, English, singular, plural) → its canonical English singular.
DURATION_UNITS: dict[str, str] = {
    **dict.fromkeys(("seconde", "seconden", "sec", "second", "seconds"), "second"),
    **dict.fromkeys(("minuut", "minuten", "min", "minute", "minutes"), "minute"),
    **dict.fromkeys(("uur", "uren", "hour", "hours"), "hour"),
    **dict.fromkeys(("dag", "dagen", "day", "days"), "day"),
    **dict.fromkeys(
        (
            "werkdag",
            "werkdagen",
            "working day",
            "working days",
            "business day",
            "business days",
            "workday",
            "workdays",
        ),
        "workday",
    ),
    **dict.fromkeys(("week", "weken", "weeks"), "week"),
    **dict.fromkeys(("maand", "maanden", "month", "months"), "month"),
    **dict.fromkeys(("jaar", "jaren", "jr", "year", "years"), "year"),
}
# Unambiguous number words only: "een" (also the article "a") and "one" (also a pronoun) are not numbers.
NUMBER_WORDS: dict[str, int] = {
    "één": 1,
    "twee": 2, "drie": 3, "vier": 4, "vijf": 5, "zes": 6, "zeven": 7, "acht": 8, "negen": 9, "tien": 10,
    "elf": 11, "twaalf": 12, "dertien": 13, "veertien": 14, "vijftien": 15, "twintig": 20, "dertig": 30,
    "veertig": 40, "vijftig": 50, "honderd": 100,
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "hundred": 100,
}  # fmt: skip
MONTHS: dict[str, int] = {
    "januari": 1, "january": 1, "februari": 2, "february": 2, "maart": 3, "march": 3, "april": 4, "mei": 5,
    "may": 5, "juni": 6, "june": 6, "juli": 7, "july": 7, "augustus": 8, "august": 8, "september": 9,
    "oktober": 10, "october": 10, "november": 11, "december": 12,
}  # fmt: skip
STOP_WORDS = _word_set(
    """
    de het een en of maar want dus dat die dit deze wat wie waar wanneer hoe welke welk waarom is zijn was waren
    wordt worden werd ben bent heb hebt heeft hebben had hadden kan kun kunt kunnen kon mag mogen moet moeten wil
    wilt willen zal zult zullen zou zouden ik je jij u jouw jullie we wij ons onze hij zij ze hem haar hun er hier
    daar in op aan bij van voor met naar uit over onder tot om door als dan ook nog al wel zo te toe af mee per
    eens heel erg zeer meer meest veel alle alles elk elke ieder iedere nu ja omdat zodat terwijl even echter
    graag bijvoorbeeld bijv ongeveer ca circa vanaf sinds binnen tussen via zoals m'n mijn jouw uw gaat gaan doe
    doet doen jou dan toch juist precies hoeveel namelijk daarom daarvoor hierbij wordt zeker inderdaad
    the a an and or but so that this these those what which who whom where when how why is are was were be been
    being am do does did have has had can could may might must shall should will would i you he she it we they me
    him her us them my your his its our their there here in on at by for with to from of about into over under up
    out as than then also too very just only more most much many some any all each every other such yes yeah
    within between via like approximately around roughly up per it's that's there's you'll you're we're i'm let
    staat staan zit zitten ligt liggen krijg krijgt krijgen get gets got
    s ll re ve d m t hi hello hallo hoi dear beste thanks thank bedankt dank
    """
)
# A negation in a sentence must be matched by one in its supporting line (and the other way round).
NEGATIONS = _word_set(
    "niet geen nooit nee niets niemand nergens zonder not no never none nothing nobody nowhere without cannot "
    "can't don't doesn't isn't aren't won't wasn't weren't didn't shouldn't mustn't"
)
# Abbreviations whose period ends no sentence (lower case, without the final period).
ABBREVIATIONS = frozenset(
    ("bijv", "bv", "o.a", "ca", "e.g", "i.e", "nr", "incl", "excl", "max", "min", "d.w.z", "m.b.t", "evt", "ong", "vs")
)
# Courtesy sentences without facts that may stand without a line (normalised, without final punctuation).
COURTESY = frozenset(
    {"graag gedaan", "fijne dag", "fijne dag nog", "ik help je graag", "have a nice day", "you're welcome"}
)
# Comparisons with other shops (on normalised text): never made, whatever the evidence.
COMPARISON = re.compile(
    r"\b(?:amazon|bol(?:\.com)?|zooplus|coolblue|marktplaats|ebay|aliexpress|temu|andere\s+(?:web)?winkels?|"
    r"andere\s+(?:aanbieders|websites?|sites?|shops?)|elders|elsewhere|other\s+(?:shops?|stores?|sites?|websites?|"
    r"retailers?|sellers?)|competitors?|concurrent(?:en)?|goedkoper\s+(?:dan\s+)?(?:bij|op|elders)|"
    r"duurder\s+(?:dan\s+)?(?:bij|op|elders)|cheaper\s+(?:than\s+)?(?:at|on|in|elsewhere)|"
    r"more\s+expensive\s+(?:than\s+)?(?:at|on|in|elsewhere))\b"
)
# Claims that the shop sells something (on normalised text): they must name a catalogue product in the evidence.
AVAILABILITY = re.compile(
    r"\b(?:(?:we|wij)\s+(?:verkopen|voeren)|verkopen\s+(?:we|wij)|(?:dat|die|deze|ze|het)\s+hebben\s+(?:we|wij)|"
    r"(?:we|wij)\s+hebben\s+(?:ook|zeker|wel|inderdaad|die|deze|dat|ze|hem|een|de|het)|hebben\s+(?:we|wij)\s+ook|"
    r"(?:we|wij)\s+(?:leveren|bieden)\s+(?:ook\s+)?(?:de|het|een|deze|die|dat|ze|hem)\b|in\s+ons\s+assortiment|"
    r"we\s+(?:also\s+|do\s+|certainly\s+)?(?:sell|stock|carry|offer)|we\s+(?:also\s+|do\s+)?have\s+(?:also\s+)?"
    r"(?:a|an|the|this|that|these|those|it|them|one|some)|yes,?\s+we\s+do|"
    r"(?:is|zijn|are)\s+(?:\S+\s+){0,3}?(?:op\s+voorraad|verkrijgbaar|leverbaar|te\s+koop|available|in\s+stock|"
    r"for\s+sale))\b"
)
# Words of a sale claim ("we verkopen ...") that rule (c) checks instead of a line: not content words then.
SALE_WORDS = _word_set(
    "verkopen verkoop verkocht voeren aan bieden leveren assortiment sell sells sold carry offer stock"
)
# English shop words (and a few Dutch synonyms) → the Dutch words a catalogue line uses.
LEXICON: dict[str, tuple[str, ...]] = {
    "price": ("prijs", "kost"), "prices": ("prijs", "prijzen"), "priced": ("prijs",), "cost": ("kost", "prijs"),
    "costs": ("kost", "kosten", "prijs"), "kost": ("prijs", "kosten"), "prijs": ("kost", "kosten"),
    "kosten": ("kost", "prijs"), "shipping": ("verzending", "verzendkosten", "verzenden"),
    "ship": ("verzenden",), "shipped": ("verzonden", "verzenden"), "ships": ("verzenden",),
    "delivery": ("levering", "bezorging", "bezorgen", "levertijd", "leveren"), "deliver": ("leveren", "bezorgen"),
    "delivered": ("bezorgd", "geleverd", "bezorgen"), "bezorging": ("levering", "verzending", "bezorgen"),
    "levering": ("bezorging", "verzending", "leveren"), "verzending": ("levering", "bezorging", "verzenden"),
    "return": ("retour", "retourneren", "terugsturen"), "returns": ("retour", "retourneren"),
    "returned": ("retour", "retourneren"), "returning": ("retour", "retourneren"),
    "refund": ("terugbetaling", "terugbetalen", "betalen"), "amount": ("bedrag",), "crude": ("ruw",),
    "works": ("werkt",), "work": ("werken", "werkt"),
    "working_day": ("werkdag",), "business_day": ("werkdag",), "next": ("volgende",), "before": ("voor",),
    "placed": ("besteld", "geplaatst"), "receipt": ("ontvangst",), "received": ("ontvangen", "ontvangst"),
    "refunded": ("terugbetaling", "terugbetalen"), "warranty": ("garantie",), "guarantee": ("garantie",),
    "day": ("dag",), "days": ("dagen", "dag"), "week": ("week",), "weeks": ("weken",), "month": ("maand",),
    "months": ("maanden",), "year": ("jaar",), "years": ("jaar", "jaren"), "hour": ("uur",), "hours": ("uur",),
    "minutes": ("minuten",), "litter": ("vulling", "kattenbakvulling"), "litter_box": ("kattenbak",),
    "cat_litter": ("kattenbakvulling", "vulling"), "food": ("voer", "voeding"), "dry_food": ("droogvoer",),
    "wet_food": ("natvoer",), "water_fountain": ("drinkfontein",), "fountain": ("drinkfontein", "fontein"),
    "drinking_fountain": ("drinkfontein",), "feeder": ("voerautomaat",), "scratching_post": ("krabpaal",),
    "cat_tree": ("krabpaal",), "free": ("gratis",), "order": ("bestelling", "bestellen"),
    "orders": ("bestellingen",), "ordered": ("besteld",), "customer_service": ("klantenservice",),
    "weight": ("gewicht",), "weighs": ("weegt", "gewicht"), "heavy": ("zwaar", "gewicht"), "height": ("hoogte",),
    "high": ("hoog", "hoogte"), "tall": ("hoog", "hoogte"), "capacity": ("inhoud",), "volume": ("inhoud",),
    "holds": ("inhoud", "bevat"), "contains": ("bevat", "inhoud"), "meals": ("maaltijden",), "meal": ("maaltijd",),
    "portion": ("portie",), "portions": ("porties",), "protein": ("eiwit",), "fat": ("vet",), "stock": ("voorraad",),
    "in_stock": ("voorraad",), "available": ("beschikbaar", "verkrijgbaar"), "pay": ("betalen", "betaal"),
    "payment": ("betaling", "betalen", "betaalmethode"), "paid": ("betaald", "betalen"), "filter": ("filter",),
    "pump": ("pomp",), "dishwasher": ("vaatwasser",), "dishwasher_safe": ("vaatwasserbestendig",),
    "cat": ("kat",), "cats": ("katten",), "large": ("groot", "grote"), "big": ("groot", "grote"),
    "small": ("klein", "kleine"), "size": ("afmetingen", "formaat", "grootte"), "dimensions": ("afmetingen",),
    "entrance": ("ingang",), "flap": ("klapdeurtje", "deurtje"), "door": ("deurtje",), "lid": ("deksel",),
    "hood": ("kap",), "bowl": ("bakje", "schaal"), "tank": ("reservoir",), "waste_bin": ("afvalbak",),
    "waste_drawer": ("afvalbak", "afvallade"), "waste_container": ("afvalbak",), "drum": ("trommel",),
    "electric": ("elektrisch",), "electrical": ("elektrisch",), "device": ("apparaat",), "appliance": ("apparaat",),
    "battery": ("batterij",), "batteries": ("batterijen",), "power": ("stroom",), "cable": ("kabel",),
    "quiet": ("stil", "stille"), "silent": ("stil", "stille"), "clean": ("schoon", "schoonmaken", "reinigen"),
    "cleaning": ("reiniging", "schoonmaken"), "self_cleaning": ("zelfreinigend", "zelfreinigende"),
    "replace": ("vervangen", "vervang"), "change": ("verversen", "vervangen"), "suitable": ("geschikt",),
    "breeds": ("rassen",), "breed": ("ras",), "material": ("materiaal",), "plastic": ("kunststof",),
    "stainless_steel": ("roestvrij", "staal", "rvs"), "recycled": ("gerecycled",), "colour": ("kleur",),
    "color": ("kleur",), "grey": ("grijs", "steengrijs"), "gray": ("grijs",), "white": ("wit",),
    "chicken": ("kip",), "beef": ("rund",), "salmon": ("zalm",), "turkey": ("kalkoen",), "wheat": ("tarwe",),
    "corn": ("mais",), "rice": ("rijst",), "ingredients": ("samenstelling", "ingredient"), "energy": ("energie",),
    "moisture": ("vocht",), "bag": ("zak",), "pouch": ("zakje",), "pouches": ("zakjes",), "parcel": ("pakket",),
    "package": ("pakket",), "pickup_point": ("afhaalpunt",), "pick_up_point": ("afhaalpunt",), "address": ("adres",),
    "netherlands": ("nederland",), "belgium": ("belgie",), "germany": ("duitsland",), "country": ("land",),
    "countries": ("landen",), "threshold": ("drempel",), "invoice": ("factuur",), "vat": ("btw",),
    "including": ("inclusief",), "included": ("inclusief", "meegeleverd"), "credit_card": ("creditcard",),
    "bank_transfer": ("overschrijving",), "email": ("e-mail", "mail"), "phone": ("telefoon", "telefonisch"),
    "call": ("telefoon", "bellen"), "bel": ("telefoon", "bellen"), "bellen": ("telefoon",),
    "closed": ("gesloten",), "monday": ("maandag",), "friday": ("vrijdag",), "saturday": ("zaterdag",),
    "sunday": ("zondag",), "holiday": ("feestdag",), "holidays": ("feestdagen",), "reply": ("reactie", "antwoord"),
    "response": ("reactie",), "answer": ("antwoord",), "confirmation": ("bevestiging",), "label": ("retourlabel",),
    "packaging": ("verpakking",), "opened": ("geopend",), "unopened": ("ongeopend",), "defective": ("defect",),
    "broken": ("kapot", "defect"), "repair": ("repareren", "reparatie"), "replacement": ("vervangend", "vervanging"),
    "damage": ("schade",), "damaged": ("beschadigd", "schade"), "wear": ("slijtage",), "reason": ("reden",),
    "cooling_off": ("bedenktijd",), "exchange": ("ruilen",), "form": ("formulier",), "assembly": ("montage",),
    "tools": ("gereedschap",), "stable": ("stabiel", "stevig"), "sturdy": ("stevig",), "wall": ("muur",),
    "hammock": ("hangmat",), "plush": ("pluche",), "ball": ("bal", "speelbal"), "odour": ("geur", "geurtjes"),
    "odor": ("geur", "geurtjes"), "smell": ("geur",), "carbon_filter": ("koolstoffilter",), "night": ("nacht",),
    "automatic": ("automatisch",), "automatically": ("automatisch",), "clumping": ("klontvormend", "klonterend"),
    "clumps": ("klontjes",), "scoop": ("scheppen", "schep"), "empty": ("leeg", "legen"), "full": ("vol",),
    "adult": ("volwassen",), "neutered": ("gesteriliseerd",), "sterilised": ("gesteriliseerd",),
    "drink": ("drinken",), "fresh": ("vers",), "store": ("bewaren",), "dry": ("droog",), "cool": ("koel",),
    "resealable": ("hersluitbaar",), "brand": ("merk",), "article_number": ("artikelnummer",),
    "minimum": ("minimaal",), "maximum": ("maximaal",), "max": ("maximaal",), "discount": ("korting",),
    "surcharge": ("toeslag",), "carrier": ("vervoerder",), "reservoir": ("reservoir",), "water": ("water",),
    "kittens": ("kittens",), "weeks_old": ("weken",), "months_old": ("maanden",), "old": ("oud",),
    "usb": ("usb",), "app": ("app",), "wifi": ("wifi",), "sensor": ("sensor",), "account": ("account",),
}  # fmt: skip


_TOKEN = re.compile(r"[a-z_][a-z0-9_']*")
_PHRASE_KEYS = sorted((k for k in LEXICON if "_" in k), key=len, reverse=True)
# A plural of the last word is the same term ("litter boxes" → "litter_boxes", looked up by its stem).
_PHRASES = re.compile(r"\b(?:" + "|".join(k.replace("_", r"[\s-]+") for k in _PHRASE_KEYS) + r")(?:e?s)?\b")
_SUFFIXES = ("heden", "ingen", "ing", "en", "es", "ed", "s", "e")
MIN_STEM = 3  # a stem keeps at least this many letters
MIN_COMPOUND = 6  # a word inside a compound ("kattenbak" in "kattenbakvulling") has at least this many letters
MIN_SHARED = 5  # two inflections of a word ("bezorgd"/"bezorgen") share at least this many letters
INFLECTION_SLACK = 2  # ... and at most this many letters of the shorter word are not shared
INFLECTION_TAIL = 4  # ... nor more than this many of the longer one


def words(normalised: str) -> list[str]:
    """The words of a normalised text, English multi-word shop terms joined ("litter box" → "litter_box")."""
    joined = _PHRASES.sub(lambda m: re.sub(r"[\s-]+", "_", m.group()), normalised.replace("’", "'"))
    return _TOKEN.findall(joined.replace("-", " "))


def content_words(normalised: str) -> list[str]:
    """The words that carry meaning: no stop words, negations or single letters."""
    return [w for w in words(normalised) if len(w) > 1 and w not in STOP_WORDS and w not in NEGATIONS]


def has_negation(normalised: str) -> bool:
    """True when the text negates ("niet", "geen", "not", "can't", "zonder", ...)."""
    return any(w in NEGATIONS or w.endswith("n't") for w in _TOKEN.findall(normalised.replace("’", "'")))


def stem(word: str) -> str:
    """A crude Dutch/English stem: one plural or inflection ending off, a doubled last consonant single."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > MIN_STEM and word[-1] == word[-2] and word[-1] not in "aeiou" else word


def word_matches(a: str, b: str, *, compounds: bool = True) -> bool:
    """Same word up to inflection, or (``compounds``) one of at least six letters inside the other (a compound)."""
    if a == b or stem(a) == stem(b):
        return True
    short, long_ = sorted((a, b), key=len)
    if compounds and len(short) >= MIN_COMPOUND and short in long_:
        return True
    shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(short))
    return shared >= max(MIN_SHARED, len(short) - INFLECTION_SLACK) and len(long_) - shared <= INFLECTION_TAIL


def in_vocabulary(word: str, vocabulary: Set[str], *, compounds: bool = True) -> bool:
    """True when ``word`` or one of its translations (``LEXICON``) matches a word of ``vocabulary``."""
    if word in vocabulary:
        return True
    plural = (*LEXICON.get(stem(word), ()), *LEXICON.get(word.removesuffix("s"), ()))  # "fountains", "cat_trees"
    options = (word, *LEXICON.get(word, ()), *plural)
    return any(word_matches(option, v, compounds=compounds) for option in options for v in vocabulary)


def translations(shop_words: Iterable[str]) -> list[str]:
    """The Dutch catalogue words ``LEXICON`` gives for the English (or synonym) shop words among ``shop_words``."""
    return [t for w in shop_words for t in LEXICON.get(w, ())]


def one_edit(a: str, b: str) -> bool:
    """``a`` and ``b`` differ by one substituted, inserted or deleted letter."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a[i + 1 :] == b[i + 1 :] if len(a) == len(b) else a[i:] == b[i + 1 :] or a[i + 1 :] == b[i:]
