"""``/admin/backends``: state, and canary weight changes that apply to the next request without a restart."""

from __future__ import annotations

import pytest

from core.routing import RoutedChatModel
from core.settings import get_settings
from fakes import AFVALBAK_9_LITER
from fakes_chat import audit_lines
from fakes_routing import answering, two_backends

TOKEN = "test-admin-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = {"input": {"question": "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"}}
OLD = "De afvalbak is 9 liter."
NEW = AFVALBAK_9_LITER  # a different sentence the claim check passes: the answer shows which backend spoke


@pytest.fixture
def admin_env(monkeypatch):
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)

    async def no_probes(*args: object) -> None:  # the fake backends' hosts do not exist: keep them in rotation
        return None

    monkeypatch.setattr("core.health.check_all", no_probes)
    get_settings.cache_clear()


def test_weight_change_applies_to_the_next_request_and_is_audited(make_client, admin_env):
    router = two_backends(answering(OLD), answering(NEW), canary_weight=0.0)
    client = make_client(llm=RoutedChatModel(router=router))
    assert client.get("/admin/backends").status_code == 401
    state = client.get("/admin/backends", headers=AUTH).json()
    assert state["routing"] is True and state["primary"] == "old" and state["canary"] == "new"
    assert [(b["name"], b["share"], b["breaker"]) for b in state["backends"]] == [
        ("old", 1.0, "closed"),
        ("new", 0.0, "closed"),
    ]
    assert client.post("/rag/invoke", json=QUESTION).json()["output"]["answer"] == OLD

    r = client.put("/admin/backends/canary", json={"backend": "new", "weight": 1.0}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert {b["name"]: b["share"] for b in r.json()["backends"]} == {"old": 0.0, "new": 1.0}
    assert client.post("/rag/invoke", json=QUESTION).json()["output"]["answer"] == NEW  # same process, no restart

    counters = {b["name"]: b["counters"] for b in client.get("/admin/backends", headers=AUTH).json()["backends"]}
    assert counters["old"]["requests"] == 1 and counters["new"]["requests"] == 1
    metrics = client.get("/metrics").text
    assert 'shop_assistant_backend_traffic_share{backend="new"} 1.0' in metrics
    lines = audit_lines(wait_for=6)
    change = next(x for x in lines if x.get("admin_action") == "backend_canary")
    assert change["admin_backend"] == "new"
    assert change["weights_before"] == {"old": 1.0, "new": 0.0} and change["weights_after"] == {"old": 0.0, "new": 1.0}
    answered = [x["backend"] for x in lines if x["route"] == "/rag/invoke"]
    assert answered == ["old", "new"]


def test_bad_canary_requests(make_client, admin_env):
    client = make_client(llm=RoutedChatModel(router=two_backends(answering(OLD), answering(NEW))))
    assert (
        client.put("/admin/backends/canary", json={"backend": "nope", "weight": 0.5}, headers=AUTH).status_code == 404
    )
    assert client.put("/admin/backends/canary", json={"backend": "new", "weight": 1.5}, headers=AUTH).status_code == 422
    assert client.put("/admin/backends/canary", json={"backend": "new", "weight": 0.5}).status_code == 401


def test_single_backend_reports_and_refuses_changes(make_client, admin_env):
    client = make_client(OLD)
    state = client.get("/admin/backends", headers=AUTH).json()
    assert state["routing"] is False and state["backends"][0]["name"] == get_settings().llm_model
    assert client.put("/admin/backends/canary", json={"backend": "x", "weight": 0.5}, headers=AUTH).status_code == 409
