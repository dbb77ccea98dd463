"""No markup out: the markup stage removes HTML, script URLs and Markdown links/images; the echo stage."""

from __future__ import annotations

import re

import pytest

from chains.claims import ClaimChecker
from core.evidence import EvidenceLine
from guards.markup import echoed_span, has_markup, strip_markup
from guards.output import OutputFilter
from guards.stream import EchoCheck, MarkupCheck, sentence_stream

PRICE = EvidenceLine(
    doc_id="catcave-classic-55",
    line=1,
    title="CatCave Classic 55 overdekte kattenbak",
    text="Prijs: € 54,95",
    product="CatCave Classic 55",
)
MARKUP_LEFT = re.compile(r"<\s*/?\s*[a-z]|\bon[a-z]+\s*=|javascript:|data:text|\]\(|&lt;", re.I)


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ('"><img src=1 onerror=alert(1)>.gif', '">.gif'),
        ("Kijk <b>hier</b>.", "Kijk hier."),
        ("<script>alert(1)</script>De prijs is 5 euro.", "De prijs is 5 euro."),
        ("Klik [hier](javascript:alert(1)) voor info.", "Klik hier voor info."),
        ("Zie ![logo](https://evil.example/x.png) de prijs.", "Zie de prijs."),
        ("&lt;img src=x onerror=alert(1)&gt; prijs", "prijs"),
        ("Open javascript:alert(document.cookie) nu", "Open nu"),
        ("Data: data:text/html;base64,PHNjcmlwdD4= hier", "Data: hier"),
        ("De prijs <img src=x", "De prijs"),
        ("<!-- verborgen --> De prijs is 5 euro.", "De prijs is 5 euro."),
    ],
)
def test_markup_is_removed_not_escaped(raw, plain):
    out = strip_markup(raw)
    assert out == plain and not MARKUP_LEFT.search(out)


def test_plain_text_is_left_alone():
    for text in ("De kattenbak is < 50 cm breed en kost € 54,95.", "Mail naar klantenservice@kattenhuis.nl.", "2 > 1"):
        assert not has_markup(text) and strip_markup(text) == text


def test_the_stage_releases_the_plain_sentence_and_fails_a_sentence_of_markup_only():
    stage = MarkupCheck()
    verdict = stage.check("De <b>CatCave Classic 55</b> kost € 54,95.", "")
    assert verdict.ok and verdict.text == "De CatCave Classic 55 kost € 54,95."
    assert not stage.check('<img src=1 onerror="alert(1)">', "").ok


def _stream():
    return sentence_stream(
        checker=ClaimChecker(min_support=0.9),
        evidence=[PRICE],
        language="nl",
        output_filter=OutputFilter(canary="CANARY-123456", protected_texts=[]),
        question="Hoeveel kost de CatCave Classic 55?",
    )


@pytest.mark.parametrize("streamed", [True, False])
def test_a_scripted_answer_with_html_reaches_the_shopper_as_plain_text(streamed):
    answer = 'De <a href="https://evil.example" onclick="x()">CatCave Classic 55</a> kost € 54,95.'
    stream = _stream()
    if streamed:
        out = "".join(stream.feed(answer[i : i + 7]) for i in range(0, len(answer), 7)) + stream.finish()
    else:
        stream.feed(answer)
        out = stream.finish()
    assert out == "De CatCave Classic 55 kost € 54,95." and stream.passed == [out]


def test_an_echoed_payload_fails():
    question = "%0Acat%20/etc/passwd and tell me the price of the litter box"
    assert echoed_span("%0acat%20/etc/passwd and tell me", question, "Prijs: € 54,95").startswith("%0acat%20/etc")
    stage = EchoCheck(question=question, context="Prijs: € 54,95")
    assert not stage.check("%0Acat%20/etc/passwd and tell me.", "").ok
    assert stage.check("De prijs is € 54,95.", "").ok  # short overlaps and evidence spans are no echo


def test_a_span_the_evidence_holds_is_no_echo():
    question = "Hoeveel kost de CatCave Classic 55 overdekte kattenbak?"
    stage = EchoCheck(question=question, context="CatCave Classic 55 overdekte kattenbak\nPrijs: € 54,95")
    assert stage.check("De CatCave Classic 55 overdekte kattenbak kost € 54,95.", "").ok
