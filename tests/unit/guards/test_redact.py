"""Redaction of personal data: e-mail, phone numbers (Dutch and international), order numbers, handles."""

from __future__ import annotations

import logging

import pytest

from core.threads import ThreadHandles
from guards.redact import EMAIL, HANDLE, ORDER, PHONE, RedactingFilter, redact, redact_obj


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me op jan.jansen+kat@example.nl aub", f"mail me op {EMAIL} aub"),
        ("J.de-Vries@sub.kattenhuis.co.uk", EMAIL),
        ("bel 06-12345678", f"bel {PHONE}"),
        ("bel 06 1234 5678.", f"bel {PHONE}."),
        ("0612345678", PHONE),
        ("vast: 020-123 45 67", f"vast: {PHONE}"),
        ("(020) 1234567", PHONE),
        ("+31 6 12345678", PHONE),
        ("+31 (0)20 123 4567", PHONE),
        ("0031 6 1234 5678", PHONE),
        ("+32 470 12 34 56", PHONE),
        ("mijn ordernummer is KH20261234", f"mijn ordernummer is {ORDER}"),
        ("kh-20261234", ORDER),
        ("bestelling 123456 is niet aangekomen", f"bestelling {ORDER} is niet aangekomen"),
        ("order number: 99887766", f"order number: {ORDER}"),
        ("Order #A12345 missing", f"Order #{ORDER} missing"),
        ("bestelnr. 2026-0042", f"bestelnr. {ORDER}"),
    ],
)
def test_personal_data_is_replaced(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "De PurrClean AutoBox 9 (KH-LB-1001) kost 249,95 euro.",
        "Boven 49 euro is de verzending gratis; levering in 1 tot 2 werkdagen.",
        "Achteraf betalen kan van €10 tot en met €1.000, binnen 30 dagen.",
        "Op 01-12-2026 om 14:30 uur, 0,5 liter per dag, 12 x 85 gram.",
        "Mijn bestelling is nog niet binnen, wat nu?",
        "Ik wil een order plaatsen voor 2 kattenbakken.",
    ],
)
def test_ordinary_shop_text_is_untouched(text):
    assert redact(text) == text


def test_conversation_handles_are_masked():
    handle, _ = ThreadHandles(b"k" * 32).issue()
    assert redact(f"DELETE /api/threads/{handle} HTTP/1.1") == f"DELETE /api/threads/{HANDLE} HTTP/1.1"


def test_redact_obj_walks_nested_values_and_keeps_keys():
    value = {"a@b.nl": ["bel 0612345678", ("x@y.com", 3)], "n": None}
    assert redact_obj(value) == {"a@b.nl": [f"bel {PHONE}", (EMAIL, 3)], "n": None}


def test_logging_filter_redacts_formatted_message():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "question from %s: %s", ("jan@example.nl", "hoi"), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == f"question from {EMAIL}: hoi"
