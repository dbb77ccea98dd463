"""The OpenAI endpoint's edges: caller-chosen keys stay out of the audit log, unparsable bodies get OpenAI 400s."""

from __future__ import annotations

import json

import pytest

from fakes_serving import audit_lines, recording_llm

MODEL = "kattenhuis-assistant"
QUESTION = "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"
ANSWER = "De afvalbak is 9 liter."


def test_unknown_keys_are_counted_not_named_in_the_audit_line(make_client, tmp_path):
    client = make_client(llm=recording_llm(ANSWER))
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": QUESTION}],
        "temperature": 0.9,
        "seed": 7,
        "jan.jansen@example.nl": 1,  # a key is free text chosen by the caller
        "x-private-note": "bel 0612345678",
    }
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == ANSWER
    audit_lines(tmp_path, "/v1/chat/completions", expect=1)  # written just after the last byte went out
    raw = (tmp_path / "audit" / "audit.jsonl").read_text()
    assert "jan.jansen" not in raw and "x-private-note" not in raw and "0612345678" not in raw
    line = [json.loads(x) for x in raw.splitlines() if '"/v1/chat/completions"' in x][-1]
    assert line["ignored_params"] == ["seed", "temperature", "<2 unknown>"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "kattenhuis-assistant", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b'{"model": "kattenhuis-assistant", "messages": ' + b"[" * 20000 + b"]" * 20000 + b"}",
    ],
    ids=["not-utf8", "nested-20000-deep"],
)
def test_unparsable_body_is_an_openai_style_400(make_client, raw):
    llm = recording_llm(ANSWER)
    client = make_client(llm=llm)
    r = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_body" and error["message"]
    assert llm.calls == []
