"""Each API replica's side of the shared state (issue #17): publish local decisions, apply the others'.

The poll loop (every ``SHARED_STATE_POLL_S``, started in the server's lifespan) does, in order:

1. publishes a canary weight change or rollback that this replica's router made on its own (the
   automatic rollback of the health loop) since the last round;
2. reads the emergency stop and the backend weights and applies each new version to the local objects
   (the ``EmergencyStop`` switch, whose state also sets the ``emergency_stop`` gauge; the router);
3. refreshes this replica's heartbeat with the versions it has applied, which the admin replies count.

With the store unreachable nothing changes locally: each replica keeps the last state it applied and
still honours its local flag file; one warning per outage, one line when the store is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from core.metrics import EMERGENCY_STOP
from core.router import Router
from core.shared_state import Entry, SharedState

logger = logging.getLogger(__name__)

STOP_KEY = "emergency_stop"
WEIGHTS_KEY = "backend_weights"
CONFIRM_MAX_WAIT_S = 5.0


class StopSwitch(Protocol):
    """The emergency stop of this process (``api.gate.EmergencyStop``)."""

    def apply_shared(self, active: bool, reason: str, *, initial: bool) -> None:
        """Take the shared state; ``initial``: the first state read at start-up (a resume keeps a local flag)."""
        ...

    def active(self) -> bool:
        """Stopped (in-process switch or flag file)."""
        ...


@dataclass(frozen=True)
class Confirmation:
    """What the admin reply says about a change: the store, the version, live and confirming replicas."""

    store: str  # "local", "redis", or "unreachable" (then only this replica changed)
    version: int | None
    replicas_alive: int
    replicas_confirmed: int

    def as_dict(self) -> dict[str, Any]:
        """The reply's ``shared`` field."""
        return vars(self).copy()


def replica_id() -> str:
    """The name of this process in the heartbeats: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ReplicaSync:
    """Publishes this replica's decisions to the shared store and applies the others' on each poll."""

    def __init__(self, store: SharedState, stop: StopSwitch, router: Router | None, poll_s: float) -> None:
        self.store = store
        self.stop = stop
        self.router = router
        self.poll_s = poll_s
        self.replica = replica_id()
        self.applied: dict[str, int] = {}
        self._stamps: dict[str, tuple[int, float]] = {}  # (version, written at): a wiped store restarts versions
        self._weights = router.weights() if router is not None else {}
        self._configured = dict(self._weights)  # LLM_BACKENDS as this process started with it
        self._rollback = router.last_rollback if router is not None else None
        self._outage = False

    @property
    def heartbeat_ttl_s(self) -> float:
        """A replica that missed about three polls no longer counts as alive."""
        return max(3.0, 3 * self.poll_s)

    # --- store access that never raises -------------------------------------------------------------------

    def _down(self, exc: Exception) -> None:
        if not self._outage:
            logger.warning(
                "shared state (%s) unreachable (%s): keeping the last applied state and the local stop flag",
                self.store.kind, type(exc).__name__,
            )  # fmt: skip
        self._outage = True

    def _up(self) -> None:
        if self._outage:
            logger.warning("shared state (%s) reachable again", self.store.kind)
        self._outage = False

    # --- publishing ---------------------------------------------------------------------------------------

    async def publish_stop(self, active: bool, reason: str) -> Entry | None:
        """Write the emergency stop (the caller has already switched this replica); ``None`` when unreachable."""
        try:
            entry = await self.store.set(STOP_KEY, {"active": active, "reason": reason}, self.replica)
        except Exception as exc:
            self._down(exc)
            return None
        self._mark(STOP_KEY, entry)
        await self._beat()
        return entry

    async def publish_weights(self) -> Entry | None:
        """Write the router's weights, canary and last rollback; ``None`` when unreachable or one backend."""
        if self.router is None:
            return None
        weights, last = self.router.weights(), self.router.last_rollback
        value = {"weights": weights, "canary": self.router.canary, "rollback": None if last is None else vars(last),
                 "configured": self._configured}  # fmt: skip
        try:
            entry = await self.store.set(WEIGHTS_KEY, value, self.replica)
        except Exception as exc:
            self._down(exc)  # not marked as published: the next round tries again
            return None
        self._weights, self._rollback = weights, last
        self._mark(WEIGHTS_KEY, entry)
        await self._beat()
        return entry

    async def confirmations(self, key: str, entry: Entry | None, wait_s: float | None = None) -> Confirmation:
        """Wait (up to about two polls) until every live replica has applied ``entry``; count them."""
        if entry is None:
            return Confirmation("unreachable", None, 1, 1)
        deadline = time.monotonic() + (min(CONFIRM_MAX_WAIT_S, 2 * self.poll_s + 0.5) if wait_s is None else wait_s)
        while True:
            try:
                live = await self.store.replicas()
            except Exception as exc:
                self._down(exc)
                return Confirmation("unreachable", entry.version, 1, 1)  # only this replica is known to have it
            confirmed = sum(1 for applied in live.values() if applied.get(key, 0) >= entry.version)
            if confirmed >= len(live) or time.monotonic() >= deadline:
                return Confirmation(self.store.kind, entry.version, len(live), confirmed)
            await asyncio.sleep(min(0.1, self.poll_s / 4))

    async def status(self, key: str) -> Confirmation:
        """Live replicas and how many have applied the version this replica applied (no wait)."""
        version = self.applied.get(key, 0)  # 0: never set since the store was created
        return await self.confirmations(key, Entry({}, version, 0.0, self.replica), wait_s=0.0)

    # --- polling ------------------------------------------------------------------------------------------

    def _mark(self, key: str, entry: Entry) -> None:
        self.applied[key] = entry.version
        self._stamps[key] = (entry.version, entry.updated_at)

    def _new(self, key: str, entry: Entry | None) -> bool:
        return entry is not None and self._stamps.get(key) != (entry.version, entry.updated_at)

    async def _beat(self) -> None:
        try:
            await self.store.heartbeat(self.replica, self.applied, self.heartbeat_ttl_s)
        except Exception as exc:
            self._down(exc)

    async def poll_once(self) -> None:
        """One round: publish a local router change, apply new shared values, refresh the heartbeat."""
        router = self.router
        if router is not None and (router.weights() != self._weights or router.last_rollback is not self._rollback):
            await self.publish_weights()  # the health loop rolled the canary back here (or a test changed it)
        try:
            stop = await self.store.get(STOP_KEY)
            weights = await self.store.get(WEIGHTS_KEY) if router is not None else None
        except Exception as exc:
            self._down(exc)
            EMERGENCY_STOP.set(1 if self.stop.active() else 0)
            return
        self._up()
        if stop is not None and self._new(STOP_KEY, stop):
            self.stop.apply_shared(bool(stop.value.get("active")), str(stop.value.get("reason", "")),
                                   initial=STOP_KEY not in self._stamps)  # fmt: skip
            self._mark(STOP_KEY, stop)
        if router is not None and weights is not None and self._new(WEIGHTS_KEY, weights):
            configured = weights.value.get("configured", self._configured)
            if WEIGHTS_KEY not in self._stamps and configured != self._configured:
                logger.warning("LLM_BACKENDS changed since the shared weights were written: publishing this one's")
                await self.publish_weights()  # a deployment with new configured weights: its configuration wins
            else:
                self._apply_weights(router, weights)
        EMERGENCY_STOP.set(1 if self.stop.active() else 0)
        await self._beat()

    def _apply_weights(self, router: Router, entry: Entry) -> None:
        value = entry.value
        try:
            router.apply_shared(dict(value.get("weights") or {}), value.get("canary"), value.get("rollback"))
        except (TypeError, ValueError) as exc:
            logger.error("shared backend weights v%d not applied: %s", entry.version, exc)
        else:
            logger.info("applied shared backend weights v%d from %s: %s", entry.version, entry.by, router.weights())
        self._weights, self._rollback = router.weights(), router.last_rollback
        self._mark(WEIGHTS_KEY, entry)

    async def run(self) -> None:
        """Poll until cancelled; a failing round is logged and the loop goes on."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.poll_once()
            except Exception:
                logger.exception("shared state round failed")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ReplicaSync]:
        """First round before serving (a stopped shop starts stopped), then the loop until the block ends."""
        try:
            await asyncio.wait_for(self.poll_once(), timeout=max(2.0, self.poll_s))
        except Exception as exc:
            self._down(exc)
        task = asyncio.create_task(self.run())
        logger.info("shared state: %s, polled every %.1f s as replica %s", self.store.kind, self.poll_s, self.replica)
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):
                await self.store.close()
