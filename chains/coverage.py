"""How much of a question the evidence speaks about: the share of its content words found in the evidence lines.

A question about something the shop does not have ("Verkopen jullie kattenluiken met chip?") still retrieves the
nearest documents, and their best lines can score well on embedding similarity alone; but the question's own
words are missing from them. Below ``graph.context.Context.min_question_coverage`` the assistant abstains with
the route to customer service instead of quoting unrelated lines. Words match up to inflection, inside compounds
and through the bilingual shop lexicon (``chains.lexicon``), so English questions are measured against the Dutch
lines too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from chains.lexicon import COMPARISON, content_words, in_vocabulary, one_edit, words
from chains.normalize import fact_spans, normalise_text
from core.evidence import EvidenceLine

IGNORED = frozenset({"email", "phone", "link", "code"})  # a shopper's own details say nothing about the topic
# A question about what the shop offers: "Hebben jullie …", "Bestaat er …", "Do you sell …" (what it asks for
# follows), or "Is … available", "… verkrijgbaar" (what it asks for is the rest of the sentence). What it asks for
# must be in the evidence, or the shop does not have it.
OFFER_FOLLOWS = re.compile(
    r"\b(?:hebben|verkopen|voeren|leveren|verkoopt|heeft|heb|verkoop|lever)\s+(?:jullie|je|u)\b|"
    r"\b(?:bestaat|is|zijn)\s+er\b|\bdo\s+you\s+(?:also\s+|still\s+)?(?:have|sell|stock|carry|offer)\b|"
    r"\b(?:is|are)\s+there\b|\bcan\s+i\s+(?:also\s+)?(?:buy|get|order)\b|"
    # a service: "Kan ik bij jullie een afspraak maken", "Kunnen jullie … komen opbouwen", "Do you offer grooming"
    r"\bkan\s+ik\s+bij\s+jullie\b|\b(?:kunnen|doen|bieden)\s+jullie\b|"
    r"\bdo\s+you\s+(?:also\s+)?(?:do|provide)\b|"
    # a price: what is priced must be in the lines, or they hold another thing's price ("Wat kost een nieuwe
    # trommel voor de AutoBox 9?" next to the AutoBox's own price line); not "how much does it weigh"
    r"\b(?:wat|hoeveel)\s+(?:kost|kosten)\b|\bprijs\s+van\b|\bhow\s+much\s+(?:is|are)\b|"
    r"\b(?:price|cost)\s+of\b",
    re.IGNORECASE,
)
OFFER_WITHIN = re.compile(r"\b(?:available|verkrijgbaar|leverbaar|in\s+stock|op\s+voorraad)\b", re.IGNORECASE)
# Helper verbs of a service request ("Kunnen jullie … komen opbouwen?", "… laten knippen"): the service is the rest.
AUXILIARIES = frozenset(["komen", "laten", "gaan", "willen", "come", "get"])
# Words that bound what is asked for rather than name it ("krabpalen van minder dan 100 euro").
BOUNDS = frozenset(
    ["minder", "meer", "dan", "onder", "boven", "euro", "less", "more", "than", "under", "over", "euros"]
)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
# Where the thing asked for ends and a clause about it begins ("een voerautomaat | die ik met mijn telefoon kan
# bedienen", "something for a cat | that drinks too little", "an automatic feeder | I can control"): only the words
# before it must be in the lines. Attributes ("van keramiek", "in een zak van 15 kg", "with lavender scent") stay.
_CLAUSE = re.compile(
    r"\b(?:die|dat|waar|waarmee|waarin|welke|zodat|omdat|als|wanneer|want|ik|je|we|wij|that|which|who|where|so|"
    r"because|if|when|i|you|we|it)\b",
    re.IGNORECASE,
)
# Words that say how, not what ("stevig genoeg", "made of"): no thing the shop could lack.
FILLERS = frozenset(["genoeg", "echt", "made", "enough", "really", "kind", "sort", "type"])
MIN_TYPO = 5  # a question word of at least this many letters one letter off a catalogue word is that word
MIN_PART = 3  # the shortest part of a compound ("bak" in "kattenbak")
# Words that ask rather than name what is asked about ("hoe lang", "hoe vaak", "weet je iets over", "how long").
ASKING = frozenset(
    [
        "lang",
        "vaak",
        "laat",
        "snel",
        "iets",
        "iemand",
        "ergens",
        "soort",
        "eigenlijk",
        "nodig",
        "weet",
        "weten",
        "klopt",
        "zeg",
        "vertel",
        "long",
        "often",
        "soon",
        "fast",
        "quick",
        "something",
        "anything",
        "someone",
        "kind",
        "need",
        "needed",
        "tell",
        "know",
    ]
)


def topic_words(question: str) -> list[str]:
    """The question's content words that name what it is about: no asking words, no shopper's own details."""
    kept, end = [], 0
    for fact, start, stop in fact_spans(question):  # e-mail addresses, phone and order numbers, links are no topic
        if fact.kind in IGNORED:
            kept.append(question[end:start])
            end = stop
    return [w for w in content_words(normalise_text(" ".join([*kept, question[end:]]))) if w not in ASKING]


def question_coverage(question: str, lines: Sequence[EvidenceLine]) -> float:
    """The share (0–1) of the question's topic words that occur in the lines' text or titles; 1 without any."""
    asked = topic_words(question)
    if not asked:
        return 1.0
    vocabulary = frozenset(w for line in lines for w in words(normalise_text(f"{line.text} {line.title}")))
    return sum(in_vocabulary(w, vocabulary) for w in asked) / len(asked)


def _part(part: str, vocabulary: frozenset[str]) -> bool:
    """A compound's part is a catalogue word, an inflection or translation of one, or a catalogue compound's head."""
    if in_vocabulary(part, vocabulary, compounds=False):
        return True
    return len(part) >= MIN_PART + 1 and any(v.endswith(part) for v in vocabulary)


def _compound(word: str, vocabulary: frozenset[str]) -> bool:
    """Every part of a Dutch compound is covered ("katten|bak|vulling"); "kattenoppas" is not: no "oppas"."""
    if _part(word, vocabulary):
        return True
    return any(
        _part(word[:i], vocabulary) and _compound(word[i:], vocabulary)
        for i in range(MIN_PART, len(word) - MIN_PART + 1)
    )


def _covered(word: str, vocabulary: frozenset[str]) -> bool:
    """What an offer question asks for is in the lines: every part of it (not just "katten" in "kattenoppas")."""
    if word in vocabulary or _compound(word, vocabulary):
        return True
    return len(word) >= MIN_TYPO and any(one_edit(word, v) for v in vocabulary)


def offer_gap(question: str, lines: Sequence[EvidenceLine]) -> str | None:
    """What an offer question asks for that the evidence lacks: its first such word or measure, else ``None``.

    In each sentence that asks whether the shop offers something, or what something costs (``OFFER_FOLLOWS``: what
    follows the cue;
    ``OFFER_WITHIN``: the rest of the sentence), every topic word must occur in the
    lines (up to inflection, translation or one typo) and every measure ("15 kg", "400 gram", "20 litre") must be
    one of theirs: "Hebben jullie VitaKat Adult ook in een zak van 15 kg?" next to the 7 kg bag's lines lacks
    "15 kg", so the shop does not sell it; "Hebben jullie een drinkfontein van keramiek?" lacks "keramiek"; "Wat kost
    een nieuwe trommel voor de AutoBox 9?" lacks "trommel": the AutoBox's own price line is not the answer (dev
    halves: 4 more out-of-catalogue questions abstain, no in-catalogue one; 1 of 105 benign questions abstains).
    """
    vocabulary: frozenset[str] | None = None
    measures: set[str] | None = None
    for sentence in _SENTENCE_END.split(question):
        if cue := OFFER_FOLLOWS.search(sentence):
            rest = sentence[cue.end() :]
            if clause := _CLAUSE.search(rest, 1):  # not at its start: "Hebben jullie | iets dat …"
                rest = rest[: clause.start()]
        elif cue := OFFER_WITHIN.search(sentence):
            rest = f"{sentence[: cue.start()]} {sentence[cue.end() :]}"
        else:
            continue
        if vocabulary is None or measures is None:
            text = " ".join(f"{line.text} {line.title}" for line in lines)
            vocabulary = frozenset(words(normalise_text(text)))
            measures = {f.value for f, _s, _e in fact_spans(text) if f.kind == "number" and " " in f.value}
        spans = fact_spans(rest)
        for fact, _start, _end in spans:
            if fact.kind == "number" and " " in fact.value and fact.value not in measures:
                return fact.raw
        for _fact, start, end in reversed(spans):  # a measure's unit is no thing asked for ("15 kilo" = "15 kg")
            rest = f"{rest[:start]} {rest[end:]}"
        for word in topic_words(rest):
            if word not in BOUNDS | AUXILIARIES | FILLERS and not _covered(word, vocabulary):
                return word
    return None


def asks_comparison(question: str) -> bool:
    """The question compares the shop with another shop ("goedkoper dan bij bol.com"): the documents cannot say."""
    return COMPARISON.search(normalise_text(question)) is not None
