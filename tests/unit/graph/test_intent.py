"""Service requests and off-topic messages: routed with fixed texts, no LLM call, no strike; mixed ones answered."""

from __future__ import annotations

import numpy as np
import pytest

from chains.service import Contact, off_topic_answer, service_answer
from core.resources import set_resources
from fakes import CATALOGUE, SHIPPING_ANSWER, SHIPPING_QUESTION, HashEmbedder, fake_resources
from graph import intent as graph_intent
from graph.builder import graph
from guards.intent import CLASSES, IntentClassifier
from modelprep.intent import fit_softmax

PAGE = """---
id: klantenservice
title: Contact met de klantenservice
doc_type: policy
---
Mail naar klantenservice@kattenhuis.nl of bel 020-1234567.
"""
ROWS = {  # tiny training set for the hashing test embedder (words are its only signal)
    "question": ["hoeveel kost de verzending", "wat kost de kattenbak", "hoe lang is de levering", "hoeveel liter"],
    "account": ["verwijder mijn account", "mijn account wijzigen", "wachtwoord vergeten account", "account opzeggen"],
    "payment": ["mijn creditcard is gestolen", "dubbel betaald creditcard", "creditcard afgeschreven", "kaart fraude"],
    "complaint": ["slechte service klacht", "ik wil een klacht indienen", "belachelijk slechte service", "klacht"],
    "privacy": ["verwijder mijn persoonsgegevens", "welke gegevens bewaren jullie", "avg gegevens", "privacy"],
    "order": ["waar blijft mijn pakket", "pakket niet ontvangen", "mijn pakket is kwijt", "pakket annuleren"],
    "off_topic": ["wat voor weer wordt het", "recept voor pannenkoeken", "wie wint het voetbal", "huiswerk wiskunde"],
}


def intent_model(embedder: HashEmbedder) -> IntentClassifier:
    texts = [t for c in CLASSES for t in ROWS[c]]
    y = np.array([CLASSES.index(c) for c in CLASSES for _ in ROWS[c]])
    x = embedder.embed_queries(texts)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    w, b = fit_softmax((x - mean) / scale, y, len(CLASSES), l2=1e-4)
    return IntentClassifier(w, b, mean, scale, service_threshold=0.5, off_topic_threshold=0.5)


@pytest.fixture
def shop(tmp_path):
    def build(*answers: str):
        res = fake_resources(tmp_path, *answers, docs={**CATALOGUE, "policies/klantenservice.md": PAGE})
        res.intent = intent_model(res.embedder)
        set_resources(res)
        graph_intent._CONTACTS.clear()
        return res

    return build


CONTACT = Contact("klantenservice@kattenhuis.nl", "020-1234567")


async def test_a_service_request_gets_the_route_with_the_page_contact_details_and_no_llm_call(shop):
    shop()  # no scripted answers: an LLM call would raise
    out = await graph.ainvoke({"question": "Verwijder mijn account nu!"})
    assert out == {**out, "mode": "service", "refused": False, "sources": []}
    assert out["answer"] == service_answer("account", CONTACT, "nl")


async def test_an_order_request_is_the_order_outcome(shop):
    shop()
    out = await graph.ainvoke({"question": "Mijn pakket is kwijt"})
    assert out["mode"] == "order" and out["refused"] is False and "020-1234567" in out["answer"]


async def test_off_topic_gets_the_short_text(shop):
    shop()
    out = await graph.ainvoke({"question": "Wie wint het voetbal?"})
    assert out["mode"] == "off_topic" and out["answer"] == off_topic_answer("nl") and not out["refused"]


async def test_a_shop_question_is_answered(shop):
    shop(SHIPPING_ANSWER)
    out = await graph.ainvoke({"question": SHIPPING_QUESTION})
    assert out["mode"] == "generated" and out["answer"] == SHIPPING_ANSWER


async def test_a_mixed_message_gets_the_answer_plus_the_route(shop):
    shop(SHIPPING_ANSWER)
    out = await graph.ainvoke(
        {"question": "Mijn pakket is kwijt, pakket niet ontvangen! En hoeveel kost de verzending?"}
    )
    assert out["mode"] == "generated" and out["answer"].startswith(SHIPPING_ANSWER)
    assert out["answer"].endswith("klantenservice: mail naar klantenservice@kattenhuis.nl of bel 020-1234567.")


def test_clauses_split_requests_from_questions():
    assert graph_intent.clauses("Mijn pakket is kwijt, en hoeveel kost de verzending?") == [
        "Mijn pakket is kwijt",
        "en hoeveel kost de verzending?",
    ]
    assert graph_intent.clauses("Waar is mijn pakket?") == ["Waar is mijn pakket?"]


def test_thresholds_decide_the_group():
    model = intent_model(HashEmbedder())
    probs = np.zeros(len(CLASSES))
    probs[CLASSES.index("payment")], probs[CLASSES.index("account")], probs[0] = 0.35, 0.3, 0.35
    assert model.decide(probs).intent == "service" and model.decide(probs).reason == "payment"  # 0.65 together
    model.service_threshold = 0.7
    assert model.decide(probs).intent == "question"


async def test_a_follow_up_whose_rewrite_failed_is_not_called_off_topic(shop):
    res = shop()
    question = "wie wint het voetbal"
    vector = [float(x) for x in res.embedder.embed_queries([question])[0]]
    alone = {"question": question, "query_vector": vector, "language": "nl"}
    assert (await graph_intent.route(res, alone))["mode"] == "off_topic"
    history = [{"role": "user", "content": "Wat kost de kattenbak?"}]
    follow_up = {**alone, "history": history, "original_question": question}  # the rewrite did not succeed
    assert await graph_intent.route(res, follow_up) is None
