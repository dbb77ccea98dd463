"""A short follow-up conversation through /api/chat/stream: real vLLM (CPU), real e5 + Chroma, the API process.

The tiny model's wording and judgement are not under test: the assertions are on the event protocol, the
checked answer (a mode, whole sentences, sources from the catalogue), the server-issued thread and the stored
history, whatever the follow-up rewrite's outcome. What the rewrite did is asserted only when the audit line says
it was used (``status: ok``); the real model's rewrite may also be rejected by the checks (it once was, on a fresh
clone), and that path is scripted in
tests/unit/graph/test_conversation.py::test_bad_rewrites_fall_back_to_the_raw_question.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.outcomes import ANSWERED, OUTCOMES
from fakes_chat import Events, parse_sse
from guards.redact import redact
from ingest.loaders import iter_files, load_file

FIRST = "Hoeveel liter is de afvalbak van de PurrClean AutoBox 9?"
FOLLOW_UP = "En hoeveel kost die?"
AUTOBOX = "purrclean-autobox-9"
ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = {doc.doc_id: doc.title for path in iter_files(ROOT / "data" / "catalogue") for doc in load_file(path)}
REWRITE_OUTCOMES = {"ok", "empty", "too_long", "rejected", "timeout", "error"}  # graph.conversation.rewrite


def _turn(base: str, question: str, thread: str | None = None) -> tuple[Events, str]:
    request_id = f"e2e-chat-{uuid.uuid4().hex[:12]}"
    body = {"question": question, **({"thread": thread} if thread else {})}
    headers = {"X-Request-ID": request_id}
    with httpx.stream("POST", f"{base}/api/chat/stream", json=body, headers=headers, timeout=300) as r:
        assert r.status_code == 200, r.read()
        events = parse_sse("".join(r.iter_text()))
    return events, request_id


def _audit_line(basetemp: Path, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for path in basetemp.glob("api*/audit.jsonl"):
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if record.get("request_id") == request_id:
                    return record
        time.sleep(0.2)
    raise AssertionError(f"no audit line for {request_id}")


def _checked_answer(events: Events) -> dict[str, Any]:
    """The final event of a turn, after the checks every answer passes whatever the model said."""
    names = [e for e, _ in events]
    assert names[0] == "thread" and names[-1] == "final", names
    assert set(names[1:-1]) <= {"sources", "token"}, names  # no `blocked`, no `error`
    final = events[-1][1]
    assert final["mode"] in OUTCOMES and final["refused"] is False and final["answer"].strip(), final
    assert final["answer"] == "".join(d["text"] for e, d in events if e == "token"), events
    for source in final["sources"]:
        assert CATALOGUE.get(source["id"]) == source["title"], source
    if final["mode"] in ANSWERED:
        assert final["sources"], final
    else:
        assert final["sources"] == [], final
    return final


def test_follow_up_conversation(api_server, tmp_path_factory: pytest.TempPathFactory):
    first, _ = _turn(api_server, FIRST)
    handle = first[0][1]["thread"]
    one = _checked_answer(first)
    # The evidence for this question is strong (never an abstention): the answer cites the AutoBox.
    assert one["mode"] in ANSWERED and AUTOBOX in [s["id"] for s in one["sources"]], one

    second, request_id = _turn(api_server, FOLLOW_UP, thread=handle)
    two = _checked_answer(second)
    assert two["thread"] == handle and second[0][1]["thread"] == handle, two

    audit = _audit_line(tmp_path_factory.getbasetemp(), request_id)
    assert handle not in json.dumps(audit)
    assert audit["mode"] == two["mode"], audit
    # The answer cites only documents retrieved for this turn (for the rewritten question when it was used).
    retrieved = audit.get("retrieved") or []  # none when the turn was routed without a search
    assert {s["id"] for s in two["sources"]} <= set(retrieved), (two["sources"], retrieved)
    rewrite = audit["rewrite"]
    assert rewrite["status"] in REWRITE_OUTCOMES, rewrite
    if rewrite["status"] == "ok":  # the real model's rewrite passed the checks and was used for retrieval
        assert rewrite["question"] and rewrite["question"] != FOLLOW_UP, rewrite
    else:  # the raw follow-up was answered instead; the audit line names no rewritten question
        assert "question" not in rewrite, rewrite

    messages = httpx.get(f"{api_server}/api/threads/{handle}", timeout=30).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in messages[::2]] == [FIRST, FOLLOW_UP]  # what the shopper asked, not the rewrite
    for stored, final in ((messages[1], one), (messages[3], two)):
        assert stored["id"] == final["message_id"] and stored["content"] == redact(final["answer"]), stored
        assert stored["sources"] == [s["id"] for s in final["sources"]], stored
    fb = {"thread": handle, "message_id": two["message_id"], "rating": "up"}
    assert httpx.post(f"{api_server}/api/feedback", json=fb, timeout=30).status_code == 201
    assert httpx.delete(f"{api_server}/api/threads/{handle}", timeout=30).status_code == 204
    assert httpx.get(f"{api_server}/api/threads/{handle}", timeout=30).status_code == 404
