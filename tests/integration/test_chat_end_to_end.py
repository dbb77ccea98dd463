"""A short follow-up conversation through /api/chat/stream: real vLLM (CPU), real e5 + Chroma, the API process.

The tiny model's wording is not under test: the assertions are on the event protocol, the sources,
the server-issued thread, and the rewritten question that the audit line records.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes_chat import Events, parse_sse

FIRST = "Hoeveel liter is de afvalbak van de PurrClean AutoBox 9?"
FOLLOW_UP = "En hoeveel kost die?"
AUTOBOX = "purrclean-autobox-9"


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


def test_follow_up_conversation(api_server, tmp_path_factory: pytest.TempPathFactory):
    first, _ = _turn(api_server, FIRST)
    assert first[0][0] == "thread" and first[-1][0] == "final", [e for e, _ in first]
    handle = first[0][1]["thread"]
    one = first[-1][1]
    assert one["sources"][0]["id"] == AUTOBOX and one["answer"].strip() and one["refused"] is False

    second, request_id = _turn(api_server, FOLLOW_UP, thread=handle)
    names = [e for e, _ in second]
    assert names[0] == "thread" and names[-1] == "final", names
    two = second[-1][1]
    assert two["thread"] == handle and two["sources"], two

    audit = _audit_line(tmp_path_factory.getbasetemp(), request_id)
    rewrite = audit["rewrite"]
    assert rewrite["status"] == "ok", rewrite  # the real model's rewrite passed the checks and was used
    assert rewrite["question"] and rewrite["question"] != FOLLOW_UP
    assert audit["retrieved"] and audit["retrieved"][0] == two["sources"][0]["id"]
    assert handle not in json.dumps(audit)

    messages = httpx.get(f"{api_server}/api/threads/{handle}", timeout=30).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[3]["id"] == two["message_id"]
    fb = {"thread": handle, "message_id": two["message_id"], "rating": "up"}
    assert httpx.post(f"{api_server}/api/feedback", json=fb, timeout=30).status_code == 201
    assert httpx.delete(f"{api_server}/api/threads/{handle}", timeout=30).status_code == 204
    assert httpx.get(f"{api_server}/api/threads/{handle}", timeout=30).status_code == 404
