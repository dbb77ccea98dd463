"""Threads are private and personal data is redacted: through the real API process (real vLLM, e5, Chroma).

One chat turn whose question carries an e-mail address, a phone number and an order number; then the
stored history (read back by its owner), the audit file and the API log must not hold them in clear, and
a forged or foreign handle can neither read, rate nor delete the thread.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from fakes_chat import parse_sse

pytestmark = pytest.mark.integration
EMAIL, PHONE, ORDER = "jan.jansen@example.nl", "06-12345678", "KH12345678"
QUESTION = f"Mijn bestelling {ORDER} is kapot, mail me op {EMAIL} of bel {PHONE}. Hoe kan ik retourneren?"


def _chat(base: str, question: str, thread: str | None = None) -> tuple[list, str]:
    request_id = f"privacy-{uuid.uuid4().hex[:12]}"
    body = {"question": question, **({"thread": thread} if thread else {})}
    with httpx.stream(
        "POST", f"{base}/api/chat/stream", json=body, headers={"X-Request-ID": request_id}, timeout=300
    ) as r:
        assert r.status_code == 200, r.read()
        return parse_sse("".join(r.iter_text())), request_id


def _forge(handle: str) -> str:
    """The same thread id with a different signature, and a made-up id with a copied signature."""
    thread_id, _, mac = handle.rpartition(".")
    return f"{thread_id}.{'0' * len(mac)}" if mac else handle + "x"


def test_personal_data_redacted_and_threads_private(api_server, tmp_path_factory):
    events, request_id = _chat(api_server, QUESTION)
    handle = events[0][1]["thread"]
    assert events[-1][0] == "final"
    message_id = events[-1][1]["message_id"]

    own = httpx.get(f"{api_server}/api/threads/{handle}", timeout=30)
    assert own.status_code == 200
    stored = json.dumps(own.json(), ensure_ascii=False)
    for secret in (EMAIL, PHONE, ORDER):
        assert secret not in stored, f"{secret} stored in clear"

    basetemp = tmp_path_factory.getbasetemp()
    deadline = time.monotonic() + 10
    audit = ""
    while request_id not in audit and time.monotonic() < deadline:
        audit = "".join(p.read_text() for p in basetemp.glob("api*/audit.jsonl"))
        time.sleep(0.3)
    assert request_id in audit
    logs = audit + "".join(p.read_text() for p in basetemp.glob("api*/api.log"))
    for secret in (EMAIL, PHONE, ORDER, handle):
        assert secret not in logs, f"{secret} in the audit file or the API log"

    for other in (_forge(handle), "th_" + uuid.uuid4().hex, "not-a-handle"):
        assert httpx.get(f"{api_server}/api/threads/{other}", timeout=30).status_code == 404
        assert httpx.delete(f"{api_server}/api/threads/{other}", timeout=30).status_code == 404
        rating = {"thread": other, "message_id": message_id, "rating": "down"}
        assert httpx.post(f"{api_server}/api/feedback", json=rating, timeout=30).status_code == 404
    assert httpx.get(f"{api_server}/api/threads/{handle}", timeout=30).status_code == 200  # untouched
    mine = {"thread": handle, "message_id": message_id, "rating": "up", "comment": f"Bel me: {PHONE}"}
    assert httpx.post(f"{api_server}/api/feedback", json=mine, timeout=30).status_code == 201

    assert httpx.delete(f"{api_server}/api/threads/{handle}", timeout=30).status_code == 204
    assert httpx.get(f"{api_server}/api/threads/{handle}", timeout=30).status_code == 404
