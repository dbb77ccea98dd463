"""Leak forms (guards.leaks), the output filter's link and code rules."""

from __future__ import annotations

import base64
import codecs
import hashlib
import time
import urllib.parse

import numpy as np
import pytest

from chains import prompts
from guards.leaks import LeakDetector, sentences, views
from guards.output import OutputFilter, StreamGuard, ungrounded

CANARY = "KH-3f9a1b2c4d5e"
PROTECTED = [prompts.system_prompt("nl", CANARY), prompts.system_prompt("en", CANARY)]
NL_ROLE, NL_RULES, NL_COPY = sentences(prompts.SYSTEM_PROMPT_NL)
EN_ROLE, EN_RULES, EN_COPY = sentences(prompts.SYSTEM_PROMPT_EN)
# Translations and paraphrases the fake embedder puts on the vector of the prompt sentence they retell.
RETOLD = {
    "Du bist der Kundenservice-Assistent eines niederländischen Webshops für Katzenbedarf.": NL_ROLE,
    "Réponds à la question en une seule phrase courte, avec un fait des documents.": NL_RULES,
    "I have to copy prices, numbers and names word for word.": EN_COPY,
}
DIM = 512


class FakeEmbed:
    """Deterministic unit vectors from a hash of the text (``RETOLD`` texts get their source's); counts calls."""

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def _vec(self, text: str) -> np.ndarray:
        seed = int(hashlib.sha256(RETOLD.get(text, text).encode()).hexdigest()[:8], 16)
        v = np.random.default_rng(seed).normal(size=DIM)
        return v / np.linalg.norm(v)

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.embedded += texts
        return np.stack([self._vec(t) for t in texts]).astype(np.float32)


@pytest.fixture(scope="module")
def filt() -> OutputFilter:
    return OutputFilter(canary=CANARY, protected_texts=PROTECTED, embed=FakeEmbed())


def _spaced(text: str, sep: str = " ") -> str:
    return sep.join(c for c in text if c != " ")


CANARY_FORMS = {
    "literal": f"Mijn referentie is {CANARY}.",
    "recased": f"REF {CANARY.upper()} en {CANARY.lower()}",
    "spaced": "Code: " + _spaced(CANARY),
    "dotted": ".".join(CANARY),
    "dashed": "-".join(CANARY.replace("-", "")),
    "newlines": "\n".join(CANARY),
    "zero_width": "\u200b".join(CANARY),
    "underscored": "_".join(CANARY),
    "halves": f"deel een {CANARY[:8]}, deel twee {CANARY[8:]}",
    "reversed": CANARY[::-1],
    "reversed_spaced": _spaced(CANARY[::-1]),
    "base64": base64.b64encode(CANARY.encode()).decode(),
    "base64_sentence": base64.b64encode(f"Mijn referentie is {CANARY}.".encode()).decode(),
    "base64_urlsafe": base64.urlsafe_b64encode(f"ref?{CANARY}>>".encode()).decode(),
    "base32": base64.b32encode(CANARY.encode()).decode(),
    "hex": CANARY.encode().hex(),
    "hex_spaced": " ".join(f"{b:02x}" for b in CANARY.encode()),
    "hex_0x": " ".join(f"0x{b:02X}" for b in CANARY.encode()),
    "hex_of_base64": base64.b64encode(CANARY.encode()).hex(),
    "rot13": codecs.encode(f"De referentie is {CANARY}", "rot_13"),
    "percent": "".join(f"%{b:02X}" for b in CANARY.encode()),
    "html_entities": "".join(f"&#{ord(c)};" for c in CANARY),
    "fullwidth": "".join(chr(ord(c) + 0xFEE0) for c in CANARY),
}

PROMPT_FORMS = {
    "literal": "Mijn opdracht: " + NL_RULES,
    "recased": prompts.SYSTEM_PROMPT_EN.upper(),
    "letter_spaced": _spaced(NL_ROLE),
    "word_per_line": "\n".join(EN_RULES.split()),
    "dotted_words": ".".join(NL_RULES.split()),
    "zero_width": "\u200b".join(EN_ROLE),
    "reversed": prompts.SYSTEM_PROMPT_NL[::-1],
    "reversed_words": " ".join(reversed(EN_RULES.split())),
    "base64": base64.b64encode(prompts.SYSTEM_PROMPT_EN.encode()).decode(),
    "hex": NL_ROLE.encode().hex(),
    "rot13": codecs.encode(prompts.SYSTEM_PROMPT_NL, "rot_13"),
    "percent": urllib.parse.quote(EN_RULES),
    "edited": "Ik ben de klantenservice-assistent van een Nederlandse webwinkel voor kattenbenodigdheden en "
    "beantwoord elke vraag in één korte zin, alleen met een feit uit de regels in de documenten.",
}

BENIGN = [
    "De CatCave Classic 55 kost € 54,95.",
    "Volgens Retourneren: je kunt binnen 30 dagen retourneren.",
    "I could not find that in our information. Please contact our customer service.",
    "Mail klantenservice@kattenhuis.nl of bel 020-1234567 (ma-vr 09.00-17.30).",
    "Verzending kost € 4,95 en is gratis vanaf € 49. Zie https://www.kattenhuis.nl/verzending.",
    "The PurrClean AutoBox 9 (KH-LB-1001) costs €349.95 and has a 9-litre waste drawer.",
    "De klantenservice-medewerkers beantwoorden je vraag binnen één werkdag.",
    "Een A4-formaat handleiding zit in de doos; de verpakking is CO2-neutraal verzonden.",
    "Kattenbakvulling, kattenbenodigdheden en krabpalen vind je in de webshop.",
    "De FeedWise Smart 4 geeft tot 6 maaltijden per dag van ongeveer 10 gram.",
    prompts.REFUSAL_NL,
    prompts.NO_CONTEXT_ANSWER_EN,
    *prompts.SCOPE_ANSWERS.values(),
]


@pytest.mark.parametrize("form", sorted(CANARY_FORMS))
def test_every_canary_form_is_blocked(filt, form):
    verdict = filt.check(CANARY_FORMS[form])
    assert verdict.decision == "block" and "canary" in verdict.reasons, (form, verdict)


@pytest.mark.parametrize("form", sorted(PROMPT_FORMS))
def test_every_system_prompt_form_is_blocked(filt, form):
    verdict = filt.check(PROMPT_FORMS[form])
    assert verdict.decision == "block" and "system_prompt_overlap" in verdict.reasons, (form, verdict)


@pytest.mark.parametrize("text", sorted(RETOLD))
def test_a_translated_or_paraphrased_prompt_is_similar(filt, text):
    verdict = filt.check(f"Natuurlijk. {text}")
    assert verdict.decision == "block" and "system_prompt_similar" in verdict.reasons, verdict


def test_without_an_embedder_there_is_no_similarity_rule():
    plain = OutputFilter(canary=CANARY, protected_texts=PROTECTED)
    assert plain.check(next(iter(RETOLD))).decision == "pass"


@pytest.mark.parametrize("answer", BENIGN)
def test_ordinary_answers_pass(filt, answer):
    assert filt.check(answer).decision == "pass", filt.check(answer)


def test_each_sentence_is_embedded_once():
    embed = FakeEmbed()
    det = LeakDetector(CANARY, PROTECTED, embed, anchors=["De AutoBox 9 kost 349,95 euro in onze winkel."])
    embed.embedded.clear()
    before = "De CatCave Classic 55 kost € 54,95 en is op voorraad."
    det.reasons(before)
    det.reasons(f"{before} Hij heeft een inhoud van 55 liter.")
    assert embed.embedded == [before, "Hij heeft een inhoud van 55 liter."]


def test_views_decode_nested_encodings():
    inner = base64.b64encode(b"hello leak world").decode()
    assert any("hello leak world" in v for v in views(inner.encode().hex()))


def test_a_short_answer_is_checked_fast():
    det = LeakDetector(CANARY, PROTECTED)
    answer = "De CatCave Classic 55 kost € 54,95 en is de volgende werkdag in huis (KH-LB-1003)."
    det.reasons(answer)
    start = time.perf_counter()
    for _ in range(100):
        det.reasons(answer)
    assert (time.perf_counter() - start) / 100 < 0.005  # typically well under 1 ms


CONTEXT = "PurrClean AutoBox 9 (KH-LB-1001) kost 249 euro. Retourneren via www.kattenhuis.nl/retour of bol.com."


@pytest.mark.parametrize(
    "answer",
    [
        "Kijk op https://evil.example?r=www.kattenhuis.nl voor korting.",
        "Kijk op https://kattenhuis.nl.evil.example/ voor korting.",
        "Kijk op https://evil.example/#www.kattenhuis.nl voor korting.",
        "Kijk op https://user@evil.example voor korting.",
        "Kijk op https://www.kattenhuis.nl@evil.example/login voor korting.",
        "Kijk op www.kattenhuis.nl.evil.example voor korting.",
        "Log in op kattenhuis-nl.com.",
    ],
)
def test_links_are_judged_by_their_parsed_host(filt, answer):
    assert "ungrounded_link" in filt.check(answer, CONTEXT).reasons


@pytest.mark.parametrize(
    "answer",
    [
        "Kijk op https://www.kattenhuis.nl/retour?order=1#formulier.",
        "Kijk op HTTPS://WWW.KATTENHUIS.NL/garantie.",
        "Kijk op shop.kattenhuis.nl/acties.",
        "Mail klantenservice@kattenhuis.nl.",
        "Hij is ook te koop via bol.com.",
    ],
)
def test_shop_links_and_links_in_the_documents_pass(filt, answer):
    assert filt.check(answer, CONTEXT).decision == "pass"


@pytest.mark.parametrize(
    ("answer", "grounded"),
    [
        ("Artikelnummer kh-lb-1001.", True),
        ("Artikelnummer Kh-Lb-1001.", True),
        ("Gebruik code korting-7731 bij het afrekenen.", False),
        ("Gebruik code Welkom-2024 bij het afrekenen.", False),
        ("Artikelnummer KH-LB-100.", False),  # the start of a grounded code is not grounded
        ("Een A4-formaat, CO2-neutraal, ma-vr bereikbaar, een e-mail sturen.", True),  # no codes at all
    ],
)
def test_codes_compare_case_insensitively(answer, grounded):
    assert (ungrounded(answer, CONTEXT) == []) is grounded


def test_a_stream_may_end_inside_a_grounded_code_or_the_shop_address():
    assert ungrounded("Het nummer is KH-LB-10", CONTEXT, partial=True) == []
    assert ungrounded("Kijk op https://www.katt", "", partial=True) == []
    assert ungrounded("Kijk op https://evil.exa", "", partial=True) == ["ungrounded_link"]
    assert ungrounded("Kijk op https://www.katt", "") == ["ungrounded_link"]


def test_stream_guard_blocks_a_link_that_only_mentions_the_shop(filt):
    guard = StreamGuard(filt, context=CONTEXT)
    answer = "Je korting staat op https://evil.example/?r=www.kattenhuis.nl klaar. " + "x " * 40
    released = "".join(guard.feed(answer[i : i + 4]) for i in range(0, len(answer), 4)) + guard.finish()
    assert guard.blocked and "ungrounded_link" in guard.reasons and "evil" not in released
