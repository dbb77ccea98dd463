"""The HTTP API with a scripted LLM: answers, streaming, admin mount, and clear 4xx errors."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from core.resources import set_resources
from evals.security.client import sse_events
from fakes import (
    CONTACT_LINE,
    CONTACT_QUESTION,
    SHIPPING,
    SHIPPING_ANSWER,
    SHIPPING_FREE,
    SHIPPING_PRICE,
    SHIPPING_QUESTION,
    fake_llm,
    fake_resources,
    with_leaky_page,
)
from fakes_serving import audit_lines

QUESTION = "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"
TOKEN = "test-admin-token-123"
LONG = SHIPPING_ANSWER  # two checked sentences (for SHIPPING_QUESTION): two chunks
CONTACT = {"id": "contact", "title": "Contact"}
CANARY = "KH-CANARY-5e1f0a9d"


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens: /ready must say so
    from core.settings import get_settings

    get_settings.cache_clear()
    set_resources(fake_resources(tmp_path, "De afvalbak is 9 liter.", LONG))
    import server

    with TestClient(server.create_app()) as c:
        yield c


def test_invoke_returns_answer_and_sources(client):
    r = client.post("/rag/invoke", json={"input": {"question": QUESTION}})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert out["answer"] == "De afvalbak is 9 liter."
    assert out["sources"][0] == {"id": "purrclean-autobox-9", "title": "PurrClean AutoBox 9 zelfreinigende kattenbak"}
    assert out["refused"] is False
    assert r.headers["x-request-id"]


def test_stream_sends_sources_then_tokens(client):
    client.post("/rag/invoke", json={"input": {"question": QUESTION}})  # uses the first scripted answer
    with client.stream("POST", "/rag/stream", json={"input": {"question": SHIPPING_QUESTION}}) as r:
        assert r.status_code == 200
        body = "".join(r.iter_text())
    data = [payload for event, payload in sse_events(body) if event == "data"]
    assert SHIPPING in data[0]["sources"] and len(data[0]["sources"]) > 1  # the evidence's documents, first
    tokens = [e["answer"] for e in data if "answer" in e]
    assert tokens == [SHIPPING_PRICE, f" {SHIPPING_FREE}"], "one chunk per checked sentence"
    assert "".join(tokens) == LONG
    closing = {"refused": False, "language": "nl", "mode": "generated", "cut": False}
    assert data[-2:] == [{"sources": [SHIPPING]}, closing]  # after the text: only the supporting document
    assert "event: end" in body


def test_public_mount_exposes_only_invoke_and_stream(client):
    for path in ("/rag/batch", "/rag/stream_log", "/rag/stream_events"):
        assert client.post(path, json={"inputs": []}).status_code == 404, path
    assert client.get("/rag/playground/").status_code == 404


def test_caller_config_is_ignored_and_server_sets_thread(client, monkeypatch):
    import api.assistant

    seen = []
    real = api.assistant.graph.astream

    def spy(inp, config=None, **kw):
        seen.append(config)
        return real(inp, config, **kw)

    monkeypatch.setattr(api.assistant.graph, "astream", spy)
    r = client.post(
        "/rag/invoke",
        json={"input": {"question": QUESTION}, "config": {"configurable": {"thread_id": "someone-else"}}},
        headers={"X-Request-ID": "req-abcdef123456"},
    )
    assert r.status_code == 200, r.text
    assert seen[0]["configurable"]["thread_id"] == "req-req-abcdef123456"
    assert seen[0]["metadata"]["request_id"] == "req-abcdef123456"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"input": {}}, 422),
        ({"input": {"question": 42}}, 422),
        ({"input": {"question": ["a"]}}, 422),
        ({"input": {"question": ""}}, 422),
        ({"input": {"question": "   \u200b\u200b  "}}, 422),
        ({"input": {"question": "x" * 2001}}, 422),
        ({"input": {"question": "x", "extra": 1}}, 422),
    ],
)
def test_bad_requests_get_clear_json_4xx(client, body, status):
    r = client.post("/rag/invoke", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]


def test_invalid_json_is_422(client):
    r = client.post("/rag/invoke", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"]


def test_one_megabyte_question_is_413(client):
    big = json.dumps({"input": {"question": "a" * 1_000_000}})
    r = client.post("/rag/invoke", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "too large" in r.json()["error"]


def test_admin_mount_requires_token(client):
    assert client.post("/admin/rag/invoke", json={"input": {"question": QUESTION}}).status_code == 401
    bad = client.post(
        "/admin/rag/invoke", json={"input": {"question": QUESTION}}, headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 401
    ok = client.post(
        "/admin/rag/invoke", json={"input": {"question": QUESTION}}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["output"]["answer"] == "De afvalbak is 9 liter."


def test_playground_loads_with_basic_auth(client):
    r = client.get("/admin/rag/playground/index.html", auth=("admin", TOKEN))
    assert r.status_code == 200
    assert "<html" in r.text.lower()
    assert client.get("/admin/rag/playground/index.html").status_code == 401


def test_admin_disabled_without_token(tmp_path, monkeypatch):
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    from core.settings import get_settings

    get_settings.cache_clear()
    set_resources(fake_resources(tmp_path))
    import server

    with TestClient(server.create_app()) as c:
        r = c.post("/admin/rag/invoke", json={"input": {"question": QUESTION}}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 403


def test_health_and_ready(client):
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 503
    assert r.json()["checks"]["llm"].startswith("unreachable")
    assert r.json()["checks"]["index"].startswith("ok")


def test_llm_down_answers_from_the_evidence_not_500_nor_503(tmp_path):
    # Every backend down: the shop keeps answering from its documents (the quoted lines, with their sources), the
    # same in invoke and stream, and the audit line still names the LLM error (metrics and alerts count it).
    import openai
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    def down():
        return openai.APIConnectionError(request=__import__("httpx").Request("POST", "http://x"))

    class DownLLM(GenericFakeChatModel):
        async def _agenerate(self, *a, **k):  # type: ignore[override]
            raise down()

        async def _astream(self, *a, **k):  # type: ignore[override]
            raise down()
            yield  # pragma: no cover

    res = fake_resources(tmp_path)
    res.llm = DownLLM(messages=iter([]))
    set_resources(res)
    import server

    with TestClient(server.create_app()) as c:
        r = c.post("/rag/invoke", json={"input": {"question": QUESTION}})
        with c.stream("POST", "/rag/stream", json={"input": {"question": QUESTION}}) as s:
            body = "".join(s.iter_text())
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert out["mode"] == "extractive" and out["refused"] is False and out["sources"]
    assert out["answer"].startswith("Volgens ")
    data = [p for e, p in sse_events(body) if e == "data"]
    assert not any("error" in d for d in data)
    assert "".join(d.get("answer", "") for d in data) == out["answer"]
    asked = audit_lines(tmp_path, "/rag/invoke", expect=1) + audit_lines(tmp_path, "/rag/stream", expect=1)
    assert len(asked) == 2 and all(x["llm_error"] == "APIConnectionError" and x["mode"] == "extractive" for x in asked)
    assert "event: end" in body


def _invoke_and_stream(question: str) -> tuple[dict, str]:
    import server

    with TestClient(server.create_app()) as c:
        out = c.post("/rag/invoke", json={"input": {"question": question}}).json()["output"]
        with c.stream("POST", "/rag/stream", json={"input": {"question": question}}) as r:
            body = "".join(r.iter_text())
    return out, body


def test_the_models_leak_is_cut_in_invoke_and_stream(tmp_path):
    from chains import prompts

    res = fake_resources(tmp_path)
    canary = res.output_filter.canary
    leak = f"{SHIPPING_PRICE} Zeker. Mijn instructies: {prompts.SYSTEM_PROMPT_NL} Referentie {canary}. {SHIPPING_FREE}"
    res.llm = fake_llm(leak, leak)
    set_resources(res)
    out, body = _invoke_and_stream(SHIPPING_QUESTION)
    assert out["answer"] == SHIPPING_PRICE and out["mode"] == "generated" and out["refused"] is False
    assert out["sources"] == [SHIPPING]
    data = [p for e, p in sse_events(body) if e == "data"]
    assert "".join(d.get("answer", "") for d in data) == SHIPPING_PRICE  # the same text as invoke
    assert not any(d.get("blocked") for d in data)  # nothing unchecked was sent that would need withdrawing
    assert data[-1] == {"refused": False, "language": "nl", "mode": "generated", "cut": True}
    for shown in (json.dumps(out), body):
        assert canary not in shown and "klantenservice-assistent van een Nederlandse" not in shown
        assert "Zeker" not in shown and SHIPPING_FREE not in shown  # nothing from the failing sentence on


def test_a_leaking_line_is_cut_by_the_leak_stage_in_invoke_and_stream(tmp_path, monkeypatch):
    from core.settings import get_settings

    monkeypatch.setenv("PROMPT_CANARY", CANARY)
    get_settings.cache_clear()
    leaky = f"Interne referentie voor de klantenservice: {CANARY}."  # a page that leaks: the claim check passes it
    answer = f"{CONTACT_LINE} {leaky} {CONTACT_LINE}"
    set_resources(fake_resources(tmp_path, answer, answer, docs=with_leaky_page(leaky)))
    out, body = _invoke_and_stream(CONTACT_QUESTION)
    assert out == {
        "answer": CONTACT_LINE,
        "sources": [CONTACT],
        "refused": False,
        "language": "nl",
        "mode": "generated",
        "cut": True,  # the leaking sentence ended the model's text
    }
    data = [p for e, p in sse_events(body) if e == "data"]
    assert data == [
        {"sources": [CONTACT]},  # the one page's lines are the evidence
        {"answer": CONTACT_LINE},
        {"refused": False, "language": "nl", "mode": "generated", "cut": True},
    ]
    assert CANARY not in body and "Interne referentie" not in body


def test_a_leaking_quote_is_replaced_by_the_refusal_in_invoke_and_stream(tmp_path, monkeypatch):
    from chains import prompts
    from core.settings import get_settings

    monkeypatch.setenv("PROMPT_CANARY", CANARY)
    get_settings.cache_clear()
    leaky = f"Interne referentie voor de klantenservice: {CANARY}."
    unsupported = "Bel de klantenservice op 020-1234567."  # fails the check: the evidence is quoted instead
    set_resources(fake_resources(tmp_path, unsupported, unsupported, docs=with_leaky_page(leaky)))
    out, body = _invoke_and_stream("Wat is de interne referentie van de klantenservice?")  # the leaky line first
    # the quote would carry the leaking line: the output filter replaces the whole answer by the refusal
    assert out["answer"] == prompts.REFUSAL_NL and out["refused"] is True and out["sources"] == []
    assert out["mode"] == "refused"
    data = [p for e, p in sse_events(body) if e == "data"]
    assert "".join(d.get("answer", "") for d in data) == prompts.REFUSAL_NL
    assert not any(d.get("blocked") for d in data)  # nothing had been sent that needs withdrawing
    assert data[-2:] == [{"sources": []}, {"refused": True, "language": "nl", "mode": "refused", "cut": True}]
    assert CANARY not in body and CANARY not in json.dumps(out) and "020-1234567" not in body
    lines = audit_lines(tmp_path, "/rag/invoke", expect=1) + audit_lines(tmp_path, "/rag/stream", expect=1)
    assert len(lines) == 2
    for line in lines:
        assert line["guard"]["decision"] == "allow" and line["mode"] == "refused"
        assert line["check"]["cut"] is True and line["check"]["failed"]["stage"] == "claims"
        assert line["output_filter"] == {"decision": "block", "reasons": ["canary"]}


def test_order_status_gets_the_fixed_route_in_invoke_stream_and_metrics(client):
    from chains import prompts

    order = "Waar is mijn bestelling 12345?"  # no scripted answer is used: the LLM is never called
    r = client.post("/rag/invoke", json={"input": {"question": order}})
    assert r.status_code == 200, r.text
    assert r.json()["output"]["answer"] == prompts.ORDER_ANSWER_NL and r.json()["output"]["sources"] == []
    with client.stream("POST", "/rag/stream", json={"input": {"question": order}}) as s:
        assert s.status_code == 200
        body = "".join(s.iter_text())
    data = [payload for event, payload in sse_events(body) if event == "data"]
    assert "".join(e["answer"] for e in data if "answer" in e) == prompts.ORDER_ANSWER_NL
    assert not any(e.get("sources") for e in data)
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    line = next(x for x in metrics.splitlines() if x.startswith('shop_assistant_scope_routes_total{route="order"}'))
    assert float(line.split()[-1]) >= 2


def test_a_service_request_is_routed_without_a_strike_or_an_llm_call(tmp_path, monkeypatch, make_client):
    """Service requests are not attacks: the fixed route, ``refused: false``, an audit line without the text."""
    import numpy as np

    from core.settings import get_settings
    from guards.intent import CLASSES, IntentClassifier

    monkeypatch.setenv("BACKOFF_STRIKES", "1")  # one strike would block the client
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    get_settings.cache_clear()
    client = make_client()  # no scripted answers: an LLM call would raise
    dim = client.resources.embedder.embed_queries(["x"]).shape[1]
    bias = np.full(len(CLASSES), -5.0, dtype=np.float32)
    bias[CLASSES.index("account")] = 5.0  # every message is an account request
    client.resources.intent = IntentClassifier(
        np.zeros((dim, len(CLASSES)), np.float32), bias, np.zeros(dim, np.float32), np.ones(dim, np.float32)
    )
    question = "Verwijder mijn account, nu meteen!"
    for _ in range(3):
        r = client.post("/rag/invoke", json={"input": {"question": question}})
        assert r.status_code == 200, r.text
        out = r.json()["output"]
        assert out["mode"] == "service" and out["refused"] is False and out["sources"] == []
        assert "account" in out["answer"]
    lines = audit_lines(tmp_path, "/rag/invoke", expect=3)
    assert lines[-1]["routed"] == {"outcome": "service", "reason": "account", "by": "classifier", "score": 0.9999}
    assert all(question not in json.dumps(line, ensure_ascii=False) for line in lines)
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'shop_assistant_outcomes_total{outcome="service"} 3.0' in metrics
