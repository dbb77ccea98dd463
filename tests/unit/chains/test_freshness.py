"""Answers about price or stock name the date of the product feed they come from."""

from __future__ import annotations

from chains.freshness import feed_note

FEED = {"doc_id": "voer", "text": "Prijs: € 17,95", "feed_date": "2026-11-26"}
POLICY = {"doc_id": "verzending", "text": "Verzending kost 4,95 euro."}


def test_price_question_with_feed_context_gets_the_dated_note():
    assert feed_note("Wat kost het VitaKat kittenvoer?", [FEED, POLICY], "nl") == (
        "(Prijs en voorraad volgens onze productfeed van 26-11-2026.)"
    )
    assert (
        feed_note("Is the feeder in stock?", [FEED], "en") == "(Price and stock as of our product feed of 2026-11-26.)"
    )


def test_no_note_without_a_feed_chunk_or_for_other_questions():
    assert feed_note("Wat kost verzending?", [POLICY], "nl") == ""
    assert feed_note("Welke kleur heeft de kattenbak?", [FEED], "nl") == ""


def test_the_oldest_feed_date_is_named():
    newer = {**FEED, "feed_date": "2026-11-27"}
    assert "26-11-2026" in feed_note("Hoeveel op voorraad?", [newer, FEED], "nl")


def test_an_unparsable_date_is_shown_as_it_is():
    assert "gisteren" in feed_note("prijs?", [{**FEED, "feed_date": "gisteren"}], "nl")
