"""Malformed HTTP requests get a clear JSON 4xx (never a 500, never an answer)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.validation import MAX_JSON_DEPTH, InvalidBodyError, check_body, json_depth
from core.resources import set_resources
from evals.security import malformed_cases
from fakes import fake_resources


@pytest.fixture
def client(tmp_path, monkeypatch):
    from core.settings import get_settings

    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "1000")  # ~25 requests from one client in one test
    monkeypatch.setenv("BACKOFF_STRIKES", "1000")
    get_settings.cache_clear()
    set_resources(fake_resources(tmp_path, "De afvalbak is 9 liter."))
    import server

    with TestClient(server.create_app(), raise_server_exceptions=False) as c:
        yield c


def test_security_suite_malformed_requests_get_json_4xx(client):
    failures = []
    cases = malformed_cases()
    for case in cases:
        r = client.request(case.method, case.path, content=case.content, headers=case.headers)
        ok = 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/json")
        if not ok or not isinstance(r.json().get("error"), str) or not r.json()["error"]:
            failures.append((case.id, r.status_code, r.text[:200]))
    assert len(cases) >= 20 and failures == []


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "words"),
    [
        (b'{"input": {"question": "hoi"}}', "text/plain", 415, "Content-Type"),
        (b'{"input": {"question": "caf\xe9"}}', "application/json", 400, "UTF-8"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "application/json", 400, "nested"),
        (b'{"input": ', "application/json", 422, "not valid JSON"),
        (b"[1]", "application/json", 422, "JSON object"),
        (b'{"input": {}, "debug": true}', "application/json", 422, "debug"),
    ],
)
def test_check_body_refuses_with_a_clear_message(raw, content_type, status, words):
    with pytest.raises(InvalidBodyError) as err:
        check_body(raw, content_type)
    assert err.value.status == status and words in err.value.message


def test_check_body_accepts_a_normal_request_and_charset():
    body = check_body(
        b'{"input": {"question": "Wat kost \\"Flow 2\\"? [ja] {nee}"}}', "application/json; charset=utf-8"
    )
    assert body == {"input": {"question": 'Wat kost "Flow 2"? [ja] {nee}'}}
    assert check_body(b'{"inputs": []}', "application/json", None) == {"inputs": []}


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth(b'{"a": "[[[[{{{{\\"]]]"}') == 1
    assert json_depth(b'{"a": [{"b": [1]}]}') == 4


def test_playground_and_unknown_public_paths_are_not_intercepted(client):
    assert client.post("/rag/batch", json={"inputs": []}).status_code == 404
    r = client.post("/rag/invoke", json={"input": {"question": "Hoeveel liter is de afvalbak?"}})
    assert r.status_code == 200 and r.json()["output"]["answer"] == "De afvalbak is 9 liter."
