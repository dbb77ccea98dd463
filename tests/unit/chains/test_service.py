"""Fixed service and off-topic answers: contact details come from the shop's customer-service page."""

from __future__ import annotations

from pathlib import Path

import pytest

from chains.service import Contact, all_fixed_texts, off_topic_answer, route_note, service_answer

PAGE = Path(__file__).resolve().parents[3] / "data" / "catalogue" / "policies" / "klantenservice.md"


def test_contact_details_are_read_from_the_customer_service_page():
    contact = Contact.from_text(PAGE.read_text(encoding="utf-8").splitlines())
    assert contact == Contact(email="klantenservice@kattenhuis.nl", phone="020-1234567")


@pytest.mark.parametrize("reason", ["account", "payment", "complaint", "privacy", "order"])
@pytest.mark.parametrize("language", ["nl", "en"])
def test_each_service_answer_names_the_page_channels(reason, language):
    text = service_answer(reason, Contact("help@shop.example", "010-7654321"), language)
    assert "help@shop.example" in text and "010-7654321" in text
    assert ("klantenservice" in text) == (language == "nl")


def test_without_details_on_the_page_no_channel_is_invented():
    text = service_answer("payment", Contact(), "en")
    assert "@" not in text and not any(ch.isdigit() for ch in text)
    assert route_note(Contact(), "nl").endswith("klantenservice.")


def test_off_topic_says_what_the_assistant_helps_with_and_every_fixed_text_is_listed():
    assert "shipping" in off_topic_answer("en") and "verzending" in off_topic_answer("nl")
    texts = all_fixed_texts(Contact("a@b.nl", "020-1234567"))
    assert off_topic_answer("nl") in texts and service_answer("order", Contact("a@b.nl", "020-1234567"), "en") in texts
