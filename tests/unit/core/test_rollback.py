"""Rollback triggers over a sliding window (injected clock), the router's rollback, and the health checks."""

from __future__ import annotations

import asyncio
import json

import httpx
from prometheus_client import REGISTRY

from core.health import apply_check, backend_monitoring, canary_share, check_all, health_url, rollback_record
from core.history import open_history
from core.rollback import RollbackMonitor, Thresholds, p95
from core.settings import Settings
from fakes_routing import Clock, answering, backend, two_backends

T = Thresholds(
    window_s=60, min_requests=10, max_error_rate=0.05, max_p95_s=20, max_restarts=3, max_negative_feedback=10
)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_error_rate_trigger_fires_on_injected_errors_and_slides_out():
    clock = Clock()
    m = RollbackMonitor(T, clock)
    for i in range(20):
        m.observe_call("new", ok=i != 0, seconds=1.0)  # 1/20 = 5%: not above
    assert m.check("new") is None
    m.observe_call("new", ok=False, seconds=1.0)  # 2/21 > 5%
    trigger = m.check("new")
    assert trigger is not None and trigger.reason == "error_rate" and "2/21" in trigger.detail
    clock.advance(61)  # the window moved on: the failures are forgotten
    assert m.check("new") is None and m.stats("new").requests == 0


def test_error_rate_needs_min_requests():
    m = RollbackMonitor(T, Clock())
    for _ in range(9):
        m.observe_call("new", ok=False, seconds=1.0)
    assert m.check("new") is None
    m.observe_call("new", ok=False, seconds=1.0)
    assert m.check("new") is not None


def test_p95_latency_trigger_fires_on_injected_latency():
    m = RollbackMonitor(T, Clock())
    for _ in range(18):
        m.observe_call("new", ok=True, seconds=2.0)
    for _ in range(2):
        m.observe_call("new", ok=True, seconds=30.0)  # 2 of 20 slow: P95 is slow
    trigger = m.check("new")
    assert trigger is not None and trigger.reason == "p95_latency"
    assert p95([1.0] * 19 + [99.0]) == 1.0 and p95([]) is None


def test_restart_and_negative_feedback_triggers():
    clock = Clock()
    m = RollbackMonitor(T, clock)
    for _ in range(3):
        m.observe_restart("new")
    assert m.check("new") is None
    m.observe_restart("new")
    assert m.check("new").reason == "restarts"  # type: ignore[union-attr]
    clock.advance(61)
    assert m.check("new", negative_feedback=10) is None
    assert m.check("new", negative_feedback=11).reason == "negative_feedback"  # type: ignore[union-attr]


def test_router_rolls_the_canary_back_once_raises_the_metric_and_keeps_the_primary():
    clock = Clock()
    router = two_backends(answering("a"), answering("b"), canary_weight=0.5, clock=clock, window_s=60, min_requests=5)
    before = metric("shop_assistant_backend_rollbacks_total", backend="new", reason="error_rate")
    for _ in range(5):
        router.record(router.by_name["new"], ok=False, seconds=0.1, ttft_s=None, fault=False)
        router.record(router.by_name["old"], ok=True, seconds=0.1, ttft_s=0.05, fault=False)
    event = router.check_rollback()
    assert event is not None and event.backend == "new" and event.previous_weight == 0.5
    assert router.shares() == {"old": 1.0, "new": 0.0}
    assert metric("shop_assistant_backend_rollbacks_total", backend="new", reason="error_rate") == before + 1
    assert metric("shop_assistant_backend_rollback_active", backend="new") == 1
    assert router.check_rollback() is None  # weight already 0: nothing more to do
    assert rollback_record(event)["admin_action"] == "backend_rollback"
    assert router.snapshot()["last_rollback"]["reason"] == "error_rate"
    router.set_weight("new", 0.1)  # an admin ramps it up again: the alert clears
    assert metric("shop_assistant_backend_rollback_active", backend="new") == 0


def test_primary_errors_never_roll_back_the_canary():
    router = two_backends(answering("a"), answering("b"), canary_weight=0.5, min_requests=1)
    for _ in range(10):
        router.record(router.by_name["old"], ok=False, seconds=0.1, ttft_s=None, fault=True)
    assert router.check_rollback() is None


def test_health_check_takes_a_backend_out_and_counts_its_return_as_a_restart():
    router = two_backends(answering("a"), answering("b"), canary_weight=0.5)
    new = router.by_name["new"]
    apply_check(router, new, "ConnectError", now=1.0)
    assert not new.available() and router.shares()["old"] == 1.0
    assert metric("shop_assistant_backend_up", backend="new") == 0
    apply_check(router, new, None, now=2.0)
    assert new.available() and new.restarts == [2.0] and router.monitor.stats("new").restarts == 1


async def test_probe_asks_models_or_api_tags_per_kind():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200 if "old" in request.url.host else 503, json={})

    router = two_backends(answering("a"), answering("b"), canary_weight=0.5)
    ollama = backend("ollama", answering("c"), weight=0.0, kind="ollama", base_url="http://ollama.invalid")
    assert health_url(ollama) == "http://ollama.invalid/api/tags"
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await check_all(router, client, 1.0)
    assert sorted(seen) == ["/v1/models", "/v1/models"]
    assert router.by_name["old"].healthy and not router.by_name["new"].healthy
    assert router.by_name["new"].last_error == "status 503"


async def test_monitoring_loop_rolls_back_and_audits(monkeypatch):
    router = two_backends(answering("a"), answering("b"), canary_weight=0.2, max_negative_feedback=1)
    written: list[dict] = []
    on_canary = [k for k in (f"t-{i}" for i in range(200)) if router.pick(k).name == "new"][:2]

    async def negative(window_s: float) -> list[str]:
        return on_canary

    async def nothing(*args, **kwargs) -> None:
        return None

    monkeypatch.setattr("core.health.check_all", nothing)
    settings = Settings(backend_health_interval_s=0.01)
    async with backend_monitoring(router, settings, written.append, negative):
        for _ in range(100):
            if written:
                break
            await asyncio.sleep(0.01)
    assert written and written[0]["rollback_reason"] == "negative_feedback" and written[0]["backend"] == "new"
    assert router.by_name["new"].weight == 0.0
    json.dumps(written[0])  # an audit line must serialise


def test_only_thumbs_down_of_canary_conversations_count():
    router = two_backends(answering("a"), answering("b"), canary_weight=0.3)
    threads = [f"t-{i}" for i in range(1000)]
    on_canary = sum(router.pick(t).name == "new" for t in threads)
    assert canary_share(router, threads) == on_canary and 200 < on_canary < 400
    router.set_weight("new", 0.0)
    assert canary_share(router, threads) == 0


async def test_history_lists_the_conversations_of_recent_thumbs_down():
    store = await open_history(Settings())
    try:
        await store.add_feedback("th-old", "m1", "down", None, now=1000.0)
        await store.add_feedback("th-a", "m1", "down", None, now=1990.0)
        await store.add_feedback("th-b", "m1", "up", None, now=1995.0)
        await store.add_feedback("th-b", "m2", "down", "slecht", now=1999.0)
        assert sorted(await store.negative_feedback_threads(60, now=2000.0)) == ["th-a", "th-b"]
    finally:
        await store.close()
