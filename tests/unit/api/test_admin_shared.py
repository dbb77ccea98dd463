"""The admin replies over the shared state (issue #17): how many replicas are alive and confirmed a change."""

from __future__ import annotations

import pytest

from api.gate import EmergencyStop
from core.settings import get_settings
from core.shared_state import LocalState
from core.state_sync import ReplicaSync
from fakes_routing import answering, two_backends

TOKEN = "test-admin-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = {"input": {"question": "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"}}


@pytest.fixture
def shared(monkeypatch):
    """One in-memory store for the app under test and a second replica; the poll interval is 0.1 s."""
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("SHARED_STATE_POLL_S", "0.1")

    async def no_probes(*args: object) -> None:
        return None

    monkeypatch.setattr("core.health.check_all", no_probes)
    get_settings.cache_clear()
    store = LocalState()
    monkeypatch.setattr("server.make_shared_state", lambda settings: store)
    return store


def test_stop_reply_counts_the_replicas_that_confirmed(make_client, shared, tmp_path):
    client = make_client("De afvalbak is 9 liter.")
    other = ReplicaSync(shared, EmergencyStop(tmp_path / "other" / "STOP"), None, poll_s=0.05)
    follower = client.portal.start_task_soon(other.run)  # the second replica polls on the app's event loop
    try:
        client.portal.call(shared.heartbeat, "silent-replica", {}, 60.0)  # alive, never applies anything
        r = client.post("/admin/emergency-stop", json={"reason": "drill"}, headers=AUTH)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["active"] is True
        assert body["shared"]["store"] == "local" and body["shared"]["version"] >= 1
        assert (body["shared"]["replicas_alive"], body["shared"]["replicas_confirmed"]) == (3, 2)
        assert other.stop.active()  # the second replica applied it within the wait
        assert client.post("/rag/invoke", json=QUESTION).status_code == 503

        state = client.get("/admin/emergency-stop", headers=AUTH).json()
        assert state["active"] is True and state["shared"]["replicas_confirmed"] == 2

        resumed = client.delete("/admin/emergency-stop", headers=AUTH).json()
        assert resumed["active"] is False and resumed["shared"]["replicas_confirmed"] == 2
        assert not other.stop.active()
        assert client.post("/rag/invoke", json=QUESTION).status_code == 200
    finally:
        follower.cancel()


def test_a_stop_from_another_replica_reaches_this_app(make_client, shared, tmp_path):
    client = make_client("De afvalbak is 9 liter.")
    client.portal.call(shared.set, "emergency_stop", {"active": True, "reason": "elsewhere"}, "other")
    for _ in range(50):
        if client.app.state.estop.active():
            break
        client.portal.call(client.app.state.shared.poll_once)
    assert client.post("/rag/invoke", json=QUESTION).status_code == 503
    assert "shop_assistant_emergency_stop 1.0" in client.get("/metrics").text
    client.app.state.estop.resume()


def test_canary_reply_reports_the_shared_change(make_client, shared):
    from core.routing import RoutedChatModel

    router = two_backends(answering("De afvalbak is 9 liter."), answering("Negen liter."), canary_weight=0.0)
    client = make_client(llm=RoutedChatModel(router=router))
    r = client.put("/admin/backends/canary", json={"backend": "new", "weight": 0.25}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["shared"]["replicas_confirmed"] == r.json()["shared"]["replicas_alive"] == 1
    stored = client.portal.call(shared.get, "backend_weights")
    assert stored is not None and stored.value["weights"] == {"old": 0.75, "new": 0.25}
