"""The shared state (issue #17): stores, the poll loop that applies it, outages, distinct-conversation rollbacks."""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.gate import EmergencyStop
from core.health import canary_share
from core.rollback import Thresholds
from core.router import Router
from core.settings import Settings
from core.shared_state import LocalState, RedisState, SharedState, make_shared_state
from core.state_sync import STOP_KEY, WEIGHTS_KEY, ReplicaSync
from fakes_routing import answering, two_backends


class FakeRedis:
    """The few ``redis.asyncio.Redis`` methods ``RedisState`` uses, in memory; ``down`` makes every call fail."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.expires: dict[str, float] = {}
        self.down = False
        self.closed = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("redis is down")
        for key in [k for k, t in self.expires.items() if t <= time.monotonic()]:
            self.data.pop(key, None)
            self.expires.pop(key, None)

    async def get(self, key: str) -> str | None:
        self._check()
        return self.data.get(key)

    async def set(self, key: str, value: str, px: int | None = None) -> bool:
        self._check()
        self.data[key] = value
        if px is None:
            self.expires.pop(key, None)
        else:
            self.expires[key] = time.monotonic() + px / 1000
        return True

    async def incr(self, key: str) -> int:
        self._check()
        self.data[key] = str(int(self.data.get(key, "0")) + 1)
        return int(self.data[key])

    async def scan_iter(self, match: str, count: int = 10) -> AsyncIterator[str]:
        self._check()
        for key in list(self.data):
            if fnmatch.fnmatchcase(key, match):
                yield key

    async def mget(self, keys: list[str]) -> list[str | None]:
        self._check()
        return [self.data.get(k) for k in keys]

    async def aclose(self) -> None:
        self.closed = True


def router() -> Router:
    return two_backends(answering("a"), answering("b"), canary_weight=0.1)


def replica(store: SharedState, tmp_path: Path, name: str, routed: Router | None = None) -> ReplicaSync:
    return ReplicaSync(store, EmergencyStop(tmp_path / name / "EMERGENCY_STOP"), routed, poll_s=0.05)


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest) -> SharedState:
    return LocalState() if request.param == "local" else RedisState(FakeRedis(), "test:")


async def test_values_are_versioned_and_heartbeats_expire(store: SharedState):
    assert await store.get("x") is None
    first = await store.set("x", {"a": 1}, by="r1")
    second = await store.set("x", {"a": 2}, by="r2")
    got = await store.get("x")
    assert got is not None and got.value == {"a": 2} and got.by == "r2" and got.version == second.version
    assert second.version > first.version
    await store.heartbeat("r1", {"x": second.version}, ttl_s=0.05)
    await store.heartbeat("r2", {}, ttl_s=10)
    assert await store.replicas() == {"r1": {"x": second.version}, "r2": {}}
    time.sleep(0.06)  # LocalState uses the wall clock, FakeRedis the monotonic one
    assert await store.replicas() == {"r2": {}}


async def test_redis_values_have_no_ttl_and_live_under_the_prefix():
    fake = FakeRedis()
    state = RedisState(fake, "shop:")
    await state.set(STOP_KEY, {"active": True, "reason": "drill"}, by="r1")
    assert "shop:v:emergency_stop" in fake.data and "shop:v:emergency_stop" not in fake.expires
    await state.close()
    assert fake.closed


def test_factory_matches_the_setting():
    assert isinstance(make_shared_state(Settings(shared_state="local")), LocalState)
    redis_state = make_shared_state(Settings(shared_state="redis", redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(redis_state, RedisState) and redis_state.prefix == "shop-assistant:state:"
    with pytest.raises(ValueError, match="REDIS_URL"):
        make_shared_state(Settings(shared_state="redis", redis_url=None))


async def test_a_stop_sent_to_one_replica_is_applied_by_the_other(store: SharedState, tmp_path: Path):
    a, b = replica(store, tmp_path, "a"), replica(store, tmp_path, "b")
    await a.poll_once()
    await b.poll_once()
    a.stop.activate("drill")  # what the admin route does: switch here, then publish
    entry = await a.publish_stop(True, "drill")
    assert entry is not None and not b.stop.active()
    await b.poll_once()
    assert b.stop.active() and isinstance(b.stop, EmergencyStop) and b.stop.reason == "drill"
    assert b.stop.flag_file.exists()  # a restart of B with the store unreachable still comes up stopped
    confirmation = await a.confirmations(STOP_KEY, entry, wait_s=0)
    assert (confirmation.replicas_alive, confirmation.replicas_confirmed) == (2, 2)

    a.stop.resume()
    await a.publish_stop(False, "")
    await b.poll_once()
    assert not b.stop.active() and not b.stop.flag_file.exists()


async def test_a_restarted_replica_comes_up_stopped(store: SharedState, tmp_path: Path):
    a = replica(store, tmp_path, "a")
    await a.publish_stop(True, "incident")
    fresh = replica(store, tmp_path, "fresh")
    async with fresh.running():
        assert fresh.stop.active()


async def test_start_up_keeps_an_operators_flag_file_when_the_shared_state_is_not_stopped(tmp_path: Path):
    store = LocalState()
    await store.set(STOP_KEY, {"active": False, "reason": ""}, by="old")
    b = replica(store, tmp_path, "b")
    assert isinstance(b.stop, EmergencyStop)
    b.stop.flag_file.parent.mkdir(parents=True)
    b.stop.flag_file.write_text("operator")
    await b.poll_once()
    assert b.stop.active()  # the host-local flag still stops this replica


async def test_canary_weight_and_rollback_follow_the_store(store: SharedState, tmp_path: Path):
    ra, rb = router(), router()
    a, b = replica(store, tmp_path, "a", ra), replica(store, tmp_path, "b", rb)
    ra.set_weight("new", 0.5)
    assert await a.publish_weights() is not None
    await b.poll_once()
    assert rb.weights() == {"old": 0.5, "new": 0.5}

    # A's health loop rolls the canary back on its own; A's next round publishes it, B's next round follows.
    ra.monitor.thresholds = Thresholds(max_restarts=0)
    ra.monitor.observe_restart("new")
    event = ra.check_rollback()
    assert event is not None and ra.weights()["new"] == 0.0
    await a.poll_once()
    await b.poll_once()
    assert rb.weights() == {"old": 1.0, "new": 0.0}
    assert rb.last_rollback is not None and rb.last_rollback.reason == "restarts"
    assert rb.snapshot()["last_rollback"] == ra.snapshot()["last_rollback"]
    assert (await store.replicas())[b.replica][WEIGHTS_KEY] == a.applied[WEIGHTS_KEY]


async def test_store_unreachable_keeps_the_last_state_and_warns_once(tmp_path: Path, caplog):
    fake = FakeRedis()
    store = RedisState(fake, "t:")
    ra, rb = router(), router()
    a, b = replica(store, tmp_path, "a", ra), replica(store, tmp_path, "b", rb)
    await a.publish_stop(True, "drill")
    ra.set_weight("new", 0.3)
    await a.publish_weights()
    await b.poll_once()
    assert b.stop.active() and rb.weights()["new"] == 0.3

    fake.down = True
    caplog.set_level(logging.WARNING, logger="core.state_sync")
    for _ in range(3):
        await b.poll_once()  # never raises
    assert b.stop.active() and rb.weights()["new"] == 0.3
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1
    entry = await a.publish_stop(False, "")  # the admin's resume still applies to the replica it reached
    assert entry is None and (await a.confirmations(STOP_KEY, entry)).store == "unreachable"

    # B's local flag file is still honoured during the outage.
    assert isinstance(b.stop, EmergencyStop)
    b.stop.resume()
    b.stop.flag_file.write_text("operator")
    await b.poll_once()
    assert b.stop.active()

    fake.down = False
    await b.poll_once()
    assert any("reachable again" in r.getMessage() for r in caplog.records)


async def test_a_silent_replica_is_counted_alive_but_not_confirmed(tmp_path: Path):
    store = LocalState()
    a = replica(store, tmp_path, "a")
    await store.heartbeat("silent", {}, ttl_s=60)
    entry = await a.publish_stop(True, "x")
    t0 = time.monotonic()
    confirmation = await a.confirmations(STOP_KEY, entry, wait_s=0.2)
    assert time.monotonic() - t0 >= 0.2
    assert confirmation.as_dict() == {
        "store": "local",
        "version": entry.version if entry else None,
        "replicas_alive": 2,
        "replicas_confirmed": 1,
    }


def test_ten_thumbs_down_in_one_conversation_count_once():
    routed = two_backends(answering("a"), answering("b"), canary_weight=0.5, max_negative_feedback=1)
    on_canary = [t for t in (f"t-{i}" for i in range(100)) if routed.pick(t).name == "new"]
    assert canary_share(routed, [on_canary[0]] * 10) == 1
    assert routed.check_rollback(canary_share(routed, [on_canary[0]] * 10)) is None  # one shopper: no rollback
    event = routed.check_rollback(canary_share(routed, on_canary[:2] * 5))  # two conversations > 1
    assert event is not None and event.reason == "negative_feedback" and "2 conversations" in event.detail


def test_compose_shares_the_state_through_persistent_redis():
    import yaml

    root = Path(__file__).resolve().parents[3]
    services = yaml.safe_load((root / "deploy" / "docker-compose.yml").read_text())["services"]
    for name in ("api-blue", "api-green"):
        assert services[name]["environment"]["SHARED_STATE"] == "redis", name
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    env_example = (root / ".env.example").read_text()
    assert "SHARED_STATE=" in env_example and "SHARED_STATE_POLL_S=" in env_example


async def test_stored_weights_outlive_a_restart_unless_the_configuration_changed(tmp_path: Path):
    store = LocalState()
    ra = router()
    a = replica(store, tmp_path, "a", ra)
    ra.set_weight("new", 0.0)  # a manual rollback through the admin route
    await a.publish_weights()
    same_config = router()  # restarted with LLM_BACKENDS as before (canary at 0.1)
    await replica(store, tmp_path, "b", same_config).poll_once()
    assert same_config.weights()["new"] == 0.0
    new_config = two_backends(answering("a"), answering("b"), canary_weight=0.3)  # a release with new weights
    await replica(store, tmp_path, "c", new_config).poll_once()
    assert new_config.weights()["new"] == 0.3
    stored = await store.get(WEIGHTS_KEY)
    assert stored is not None and stored.value["weights"]["new"] == 0.3
    await a.poll_once()
    assert ra.weights()["new"] == 0.3  # the running replica follows the new release's configuration
