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
