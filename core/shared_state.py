"""One truth across API replicas (issue #17): small named JSON values in a shared store, plus replica heartbeats.

``SHARED_STATE=local`` (the default) keeps the values in this process: a single API process needs no
external store. ``SHARED_STATE=redis`` keeps them in Redis (``REDIS_URL``) under ``SHARED_STATE_PREFIX``,
without a TTL, so that a value (the emergency stop, the canary weights) outlives an API restart, and a
Redis restart too when Redis persists its data (compose: ``appendonly yes``). Every value carries a
version (a Redis counter, last writer wins) so that replicas apply each change once.

Each replica also writes a heartbeat key with a TTL that holds the versions it has applied: the admin
replies count the live replicas and those that confirmed a change from these heartbeats.
``core.state_sync`` runs the poll loop that applies the values to the local objects.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from core.settings import Settings

logger = logging.getLogger(__name__)

STORE_TIMEOUT_S = 1.0  # socket timeout of the Redis client: an unreachable store must not hold a request long


@dataclass(frozen=True)
class Entry:
    """One shared value: what it is, its version, when and by which replica it was written."""

    value: dict[str, Any]
    version: int
    updated_at: float
    by: str


class SharedState(Protocol):
    """A store of small named JSON values and replica heartbeats (raises on an unreachable store)."""

    kind: str

    async def get(self, key: str) -> Entry | None:
        """The current value of ``key`` (``None`` when never written)."""
        ...

    async def set(self, key: str, value: dict[str, Any], by: str) -> Entry:
        """Write ``value`` under ``key`` with the next version; returns the stored entry."""
        ...

    async def heartbeat(self, replica: str, applied: dict[str, int], ttl_s: float) -> None:
        """Say that ``replica`` is alive and has applied ``applied`` (key → version); expires after ``ttl_s``."""
        ...

    async def replicas(self) -> dict[str, dict[str, int]]:
        """Live replicas (heartbeat not expired) and the versions each has applied."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class LocalState:
    """The in-process store: the default for a single API process (no replica but this one)."""

    kind = "local"

    def __init__(self, clock: Any = time.time) -> None:
        self._values: dict[str, Entry] = {}
        self._beats: dict[str, tuple[float, dict[str, int]]] = {}
        self._version = 0
        self._clock = clock

    async def get(self, key: str) -> Entry | None:
        """The current value of ``key``."""
        return self._values.get(key)

    async def set(self, key: str, value: dict[str, Any], by: str) -> Entry:
        """Store ``value`` with the next version."""
        self._version += 1
        entry = Entry(dict(value), self._version, self._clock(), by)
        self._values[key] = entry
        return entry

    async def heartbeat(self, replica: str, applied: dict[str, int], ttl_s: float) -> None:
        """Record the replica's applied versions until ``ttl_s`` from now."""
        self._beats[replica] = (self._clock() + ttl_s, dict(applied))

    async def replicas(self) -> dict[str, dict[str, int]]:
        """Replicas whose heartbeat has not expired."""
        now = self._clock()
        return {name: applied for name, (until, applied) in self._beats.items() if until > now}

    async def close(self) -> None:
        """Nothing to release."""


class RedisState:
    """Values and heartbeats in Redis under ``prefix``: ``<prefix>v:<key>`` (no TTL), ``<prefix>replica:<id>``."""

    kind = "redis"

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client  # redis.asyncio.Redis (decode_responses=True) or a stand-in with the same methods
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisState:
        """A client for ``url`` with short timeouts (an outage must not hold the poll loop or a request)."""
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=STORE_TIMEOUT_S, socket_connect_timeout=STORE_TIMEOUT_S
        )
        return cls(client, prefix)

    async def get(self, key: str) -> Entry | None:
        """The current value of ``key``."""
        raw = await self.client.get(f"{self.prefix}v:{key}")
        if raw is None:
            return None
        data = json.loads(raw)
        return Entry(dict(data["value"]), int(data["version"]), float(data["updated_at"]), str(data["by"]))

    async def set(self, key: str, value: dict[str, Any], by: str) -> Entry:
        """Store ``value`` with the next version of the shared counter (no TTL: it survives restarts)."""
        version = int(await self.client.incr(f"{self.prefix}version"))
        entry = Entry(dict(value), version, time.time(), by)
        raw = {"value": entry.value, "version": version, "updated_at": entry.updated_at, "by": by}
        await self.client.set(f"{self.prefix}v:{key}", json.dumps(raw, separators=(",", ":")))
        return entry

    async def heartbeat(self, replica: str, applied: dict[str, int], ttl_s: float) -> None:
        """``<prefix>replica:<id>`` = the applied versions, expiring after ``ttl_s``."""
        raw = json.dumps({"applied": applied, "at": time.time()}, separators=(",", ":"))
        await self.client.set(f"{self.prefix}replica:{replica}", raw, px=max(1, int(ttl_s * 1000)))

    async def replicas(self) -> dict[str, dict[str, int]]:
        """Replicas with a live heartbeat key."""
        keys = [k async for k in self.client.scan_iter(match=f"{self.prefix}replica:*", count=100)]
        if not keys:
            return {}
        out: dict[str, dict[str, int]] = {}
        for key, raw in zip(keys, await self.client.mget(keys), strict=True):
            if raw is not None:
                applied = json.loads(raw).get("applied") or {}
                out[key.removeprefix(f"{self.prefix}replica:")] = {k: int(v) for k, v in applied.items()}
        return out

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def make_shared_state(settings: Settings) -> SharedState:
    """The store of ``SHARED_STATE``: ``local`` (this process) or ``redis`` (``REDIS_URL``)."""
    match settings.shared_state:
        case "local":
            return LocalState()
        case "redis":
            if not settings.redis_url:
                raise ValueError("SHARED_STATE=redis needs REDIS_URL")
            return RedisState.from_url(settings.redis_url, settings.shared_state_prefix)
