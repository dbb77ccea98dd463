"""Output filter and the streaming hold-back window."""

from __future__ import annotations

import pytest

from chains import prompts
from guards.output import HOLDBACK_CHARS, OutputFilter, StreamGuard

CANARY = "KH-canary-5a5a5a"


@pytest.fixture
def filt() -> OutputFilter:
    return OutputFilter(
        canary=CANARY, protected_texts=[prompts.system_prompt("nl", CANARY)], secrets=["super-secret-admin-token"]
    )


@pytest.mark.parametrize(
    "answer",
    [
        "De afvalbak is 9 liter.",
        "Verzending kost € 4,95 en is gratis vanaf € 49. Zie https://www.kattenhuis.nl/verzending.",
        "Mail klantenservice@kattenhuis.nl of bel 020-1234567 (ma-vr 09.00-17.30).",
        "The CatCave Classic 55 costs €54.95 and holds 55 litres.",
    ],
)
def test_shop_answers_pass(filt, answer):
    assert filt.check(answer).decision == "pass"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (f"Mijn referentie is {CANARY.upper()}", "canary"),
        (prompts.SYSTEM_PROMPT_NL[20:75], "system_prompt_overlap"),
        ("het token is super-secret-admin-token", "secret"),
        ("Kijk in /etc/passwd", "file_path"),
        ('Traceback (most recent call last):\n  File "server.py", line 3', "stack_trace"),
        ("De server draait op http://127.0.0.1:8001/v1", "internal_host"),
        ("Gebruik vllm.svc.cluster.local", "internal_host"),
        ("LLM_API_KEY=abc123", "env_var"),
        ("sleutel sk-abcdefghijklmnopqrstuvwx", "secret_key"),
    ],
)
def test_leaks_are_blocked(filt, answer, reason):
    verdict = filt.check(answer)
    assert verdict.decision == "block"
    assert reason in verdict.reasons


def test_stream_guard_never_releases_a_leak(filt):
    leak = "Natuurlijk! " + prompts.SYSTEM_PROMPT_NL
    guard = StreamGuard(filt)
    released = "".join(guard.feed(leak[i : i + 3]) for i in range(0, len(leak), 3)) + guard.finish()
    assert guard.blocked
    assert "klantenservice-assistent van een" not in released
    assert len(released) <= HOLDBACK_CHARS  # nothing beyond the clean prefix left the server


def test_stream_guard_releases_clean_text_with_holdback(filt):
    text = "De PurrClean AutoBox 9 heeft een afvalbak van 9 liter die je eens per week leegt."
    guard = StreamGuard(filt)
    pieces = [guard.feed(w + " ") for w in text.split()]
    assert "".join(pieces)  # some text left before the end
    assert len("".join(pieces)) <= len(text) + 1 - HOLDBACK_CHARS + 1
    assert ("".join(pieces) + guard.finish()).strip() == text
    assert not guard.blocked


def test_canary_is_in_system_prompt_only_when_given():
    assert CANARY in prompts.system_prompt("nl", CANARY)
    assert prompts.system_prompt("en", "") == prompts.SYSTEM_PROMPT_EN


CONTEXT = "PurrClean AutoBox 9 (KH-LB-1001) kost 249 euro. Retourneren via www.kattenhuis.nl/retour of bol.com."


@pytest.mark.parametrize(
    "answer",
    [
        "De AutoBox 9 (KH-LB-1001) kost 249 euro.",
        "Je kunt retourneren via www.kattenhuis.nl/retour.",
        "Kijk op https://www.kattenhuis.nl/garantie of mail info@kattenhuis.nl.",
        "Hij is ook te koop via bol.com.",
        "De afvalbak is 9 liter; USB-kabel niet nodig.",
    ],
)
def test_grounded_codes_and_links_pass(filt, answer):
    assert filt.check(answer, CONTEXT).decision == "pass"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("De AutoBox 9 kost 249 euro. Gutschein: KATZE-GRATIS-77", "ungrounded_code"),
        ("Gebruik code KORTING-7731 voor 90% korting.", "ungrounded_code"),
        ("Artikelnummer KH-LB-9999.", "ungrounded_code"),
        ("Bestel goedkoper op www.goedkope-katten-shop.biz!", "ungrounded_link"),
        ("Zie https://evil.example/login voor je korting.", "ungrounded_link"),
    ],
)
def test_codes_and_links_not_in_the_documents_are_blocked(filt, answer, reason):
    verdict = filt.check(answer, CONTEXT)
    assert verdict.decision == "block" and reason in verdict.reasons
    assert reason not in filt.check(answer).reasons  # the grounding rules need the retrieved context


def test_stream_guard_blocks_an_injected_code_before_it_is_released(filt):
    guard = StreamGuard(filt, context=CONTEXT)
    answer = "De AutoBox 9 kost 249 euro. " + "Gutschein: KATZE-GRATIS-77. " + "x " * 40
    released = "".join(guard.feed(answer[i : i + 3]) for i in range(0, len(answer), 3)) + guard.finish()
    assert guard.blocked and "ungrounded_code" in guard.reasons
    assert "KATZE" not in released


def test_stream_guard_waits_for_an_unfinished_shop_address(filt):
    guard = StreamGuard(filt, context="Retourneren kan binnen 30 dagen.")
    for piece in ("Kijk op https://www.katt", "enhuis.nl/retour voor ", "het formulier."):
        guard.feed(piece)
    assert not guard.blocked and guard.finish().endswith("formulier.")
