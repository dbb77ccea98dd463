"""How much of a question the evidence speaks about: the share of its content words found in the evidence lines.

A question about something the shop does not have ("Verkopen jullie kattenluiken met chip?") still retrieves the
nearest documents, and their best lines can score well on embedding similarity alone; but the question's own
words are missing from them. Below ``graph.context.Context.min_question_coverage`` the assistant abstains with
the route to customer service instead of quoting unrelated lines. Words match up to inflection, inside compounds
and through the bilingual shop lexicon (``chains.lexicon``), so English questions are measured against the Dutch
lines too.
"""

from __future__ import annotations

from collections.abc import Sequence

from chains.lexicon import content_words, in_vocabulary, words
from chains.normalize import fact_spans, normalise_text
from core.evidence import EvidenceLine

IGNORED = frozenset({"email", "phone", "link", "code"})  # a shopper's own details say nothing about the topic
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
