"""Chat lifecycle: a disconnecting client cancels the LLM request; conversations expire after the retention."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from core.settings import get_settings
from fakes_chat import SlowStreamingModel, chat, final

QUESTION = "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"
DAY_S = 86_400


async def _disconnect_after_first_token(app: Any) -> tuple[list[dict[str, Any]], float]:
    """Drive one SSE request at the ASGI level; the client goes away once the first token arrived."""
    body = json.dumps({"question": QUESTION}).encode()
    token_seen = asyncio.Event()
    sent: list[dict[str, Any]] = []
    body_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await token_seen.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and b"event: token" in message.get("body", b""):
            token_seen.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/chat/stream",
        "raw_path": b"/api/chat/stream",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    t0 = time.monotonic()
    await asyncio.wait_for(app(scope, receive, send), 20)
    return sent, time.monotonic() - t0


def test_client_disconnect_cancels_the_llm_request(make_client):
    llm = SlowStreamingModel(messages=iter([]), tokens=200, delay_s=0.05)  # 10 s if it ran to the end
    client = make_client(llm=llm)
    sent, elapsed = client.portal.call(_disconnect_after_first_token, client.app)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()
    assert body.startswith("event: thread") and "event: token" in body
    assert "event: final" not in body
    # The abandoned LLM stream is closed by the event loop's async-generator finaliser right after the run
    # is cancelled (ChatOpenAI closes its HTTP response there, which aborts the request in vLLM).
    deadline = time.monotonic() + 3
    while not llm.log["cancelled"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert llm.log["cancelled"] is True and llm.log["finished"] is False, (llm.log, body)
    assert llm.log["sent"] < 60, llm.log
    assert elapsed < 6, f"the request ran on for {elapsed:.1f} s after the client left"
    handle = json.loads(body.split("data:", 1)[1].split("\n", 1)[0])["thread"]
    assert client.get(f"/api/threads/{handle}").json()["messages"] == []  # the cut-off turn is not stored


def _age(client: Any, handle: str, days: float) -> None:
    service = client.app.state.chat

    async def touch() -> None:
        await service.store.touch(service.handles.verify(handle), now=time.time() - days * DAY_S)

    client.portal.call(touch)


def test_running_server_purges_expired_conversations(make_client, monkeypatch):
    monkeypatch.setenv("HISTORY_PURGE_INTERVAL_S", "0.2")
    get_settings.cache_clear()
    client = make_client("Een.", "Twee.")
    recent, idle = (final(chat(client, f"Vraag {i} over de afvalbak?"))["thread"] for i in range(2))
    _age(client, recent, 29)  # within the default 30 days: kept
    _age(client, idle, 31)
    deadline = time.monotonic() + 5
    while client.get(f"/api/threads/{idle}").status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.get(f"/api/threads/{idle}").status_code == 404
    assert client.get(f"/api/threads/{recent}").status_code == 200
    store, thread_id = client.app.state.chat.store, client.app.state.chat.handles.verify(idle)
    assert client.portal.call(store.saver.aget_tuple, {"configurable": {"thread_id": thread_id}}) is None


def test_start_up_purges_expired_conversations(make_client, monkeypatch):
    monkeypatch.setenv("HISTORY_RETENTION_DAYS", "7")
    get_settings.cache_clear()
    first = make_client("Een.", "Twee.")  # purges only at start-up and then hourly
    old, recent = (final(chat(first, f"Vraag {i} over de afvalbak?"))["thread"] for i in range(2))
    _age(first, old, 8)
    _age(first, recent, 6)
    assert first.get(f"/api/threads/{old}").status_code == 200  # nothing purged it yet
    second = make_client("Drie.")  # a server starting on the same database
    assert second.get(f"/api/threads/{old}").status_code == 404
    assert second.get(f"/api/threads/{recent}").status_code == 200
