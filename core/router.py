"""Which backend answers a conversation (issue #6): sticky weighted canary, failover target, rollback.

A conversation's key (thread id, else request id) is hashed to a point ``u`` in [0, 1); the
backends in rotation (healthy, breaker not open) divide [0, 1) by their weights, the primary last.
Raising the canary's share only moves conversations *onto* the canary (10% → 50% → 100%), so one
conversation never switches back and forth while the canary ramps up. A backend out of rotation
hands its share to the others and gets it back when healthy.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from core.backends import Backend, Clock
from core.metrics import (
    BACKEND_CALLS,
    BACKEND_LATENCY,
    BACKEND_ROLLBACK_ACTIVE,
    BACKEND_ROLLBACKS,
    BACKEND_TRAFFIC_SHARE,
    BACKEND_TTFT,
    BACKEND_UP,
)
from core.rollback import RollbackMonitor, Thresholds, Trigger

logger = logging.getLogger(__name__)


def key_point(key: str) -> float:
    """A stable point in [0, 1) for a conversation key (the same in every process and replica)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


@dataclass(frozen=True)
class Rollback:
    """An automatic rollback that happened (``GET /admin/backends`` and the audit log)."""

    backend: str
    reason: str
    detail: str
    previous_weight: float
    at: float  # wall-clock time


class Router:
    """The backends, their weights, and the choice per conversation."""

    def __init__(
        self, backends: list[Backend], thresholds: Thresholds | None = None, clock: Clock = time.monotonic
    ) -> None:
        if not backends:
            raise ValueError("the router needs at least one backend")
        self.backends = backends
        self.by_name = {b.name: b for b in backends}
        self.primary = next((b for b in backends if b.spec.role == "primary"), backends[0])
        canary = next((b for b in backends if b is not self.primary), None)
        self.canary: str | None = canary.name if canary is not None else None
        self.monitor = RollbackMonitor(thresholds or Thresholds(), clock)
        self.clock = clock
        self.last_rollback: Rollback | None = None
        self.publish()

    # --- choice ---------------------------------------------------------------------------------------------

    def _order(self, candidates: list[Backend]) -> list[Backend]:
        return [b for b in candidates if b is not self.primary] + [b for b in candidates if b is self.primary]

    def shares(self, in_rotation_only: bool = True) -> dict[str, float]:
        """Each backend's share of new conversations (0 for one out of rotation)."""
        live = [b for b in self.backends if b.available()] if in_rotation_only else list(self.backends)
        live = live or list(self.backends)  # all down: keep trying by weight rather than refusing outright
        total = sum(b.weight for b in live)
        if total <= 0:
            first = self.primary if self.primary in live else live[0]
            return {b.name: 1.0 if b is first else 0.0 for b in self.backends}
        return {b.name: (b.weight / total if b in live else 0.0) for b in self.backends}

    def pick(self, key: str) -> Backend:
        """The backend for the conversation ``key``."""
        shares = self.shares()
        u = key_point(key)
        chosen: Backend | None = None
        edge = 0.0
        for b in self._order(self.backends):
            if shares[b.name] <= 0:
                continue
            chosen = b
            edge += shares[b.name]
            if u < edge:
                return b
        assert chosen is not None  # shares always sum to 1 over at least one backend
        return chosen  # rounding at the top edge

    def fallback_for(self, backend: Backend) -> Backend | None:
        """The backend a call retries on when ``backend`` failed before its first token (one retry)."""
        others = [b for b in self.backends if b is not backend]
        live = [b for b in others if b.available()]
        ranked = sorted(live or others, key=lambda b: (b is not self.primary, -b.weight))
        return ranked[0] if ranked else None

    # --- weights --------------------------------------------------------------------------------------------

    def set_weight(self, name: str, weight: float) -> None:
        """Give ``name`` the share ``weight`` of new conversations; the others share the rest as before.

        Only new conversations and later turns are routed with it: calls in flight keep their backend.
        """
        if name not in self.by_name:
            raise KeyError(name)
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be within 0..1, got {weight}")
        target = self.by_name[name]
        others = [b for b in self.backends if b is not target]
        rest = 1.0 - weight if others else 0.0
        total = sum(b.weight for b in others)
        for b in others:
            if total > 0:
                b.weight = b.weight / total * rest
            else:
                b.weight = rest if b is (self.primary if target is not self.primary else others[0]) else 0.0
        target.weight = weight if others else 1.0
        if target is not self.primary:
            self.canary = name
            if weight > 0:
                BACKEND_ROLLBACK_ACTIVE.labels(backend=name).set(0)
        self.publish()

    def weights(self) -> dict[str, float]:
        """Each backend's configured weight (what the shared state holds, ``core.state_sync``)."""
        return {b.name: round(b.weight, 6) for b in self.backends}

    def apply_shared(self, weights: dict[str, float], canary: str | None, rollback: dict[str, Any] | None) -> None:
        """Take the weights (and the rollback) another replica decided; unknown backend names are ignored."""
        for name, weight in weights.items():
            if name in self.by_name:
                self.by_name[name].weight = min(1.0, max(0.0, float(weight)))
        if canary in self.by_name:
            self.canary = canary
        if rollback is not None and (self.last_rollback is None or vars(self.last_rollback) != rollback):
            self.last_rollback = Rollback(**rollback)
            self.monitor.reset(self.last_rollback.backend)
        for b in self.backends:
            if b is not self.primary and b.weight > 0:
                BACKEND_ROLLBACK_ACTIVE.labels(backend=b.name).set(0)
            elif self.last_rollback is not None and b.name == self.last_rollback.backend:
                BACKEND_ROLLBACK_ACTIVE.labels(backend=b.name).set(1)
        self.publish()

    def publish(self) -> None:
        """Export shares and rotation state to the metrics."""
        for name, share in self.shares().items():
            BACKEND_TRAFFIC_SHARE.labels(backend=name).set(share)
        for b in self.backends:
            BACKEND_UP.labels(backend=b.name).set(1 if b.available() else 0)

    # --- outcomes -------------------------------------------------------------------------------------------

    def record(self, backend: Backend, *, ok: bool, seconds: float, ttft_s: float | None, fault: bool) -> None:
        """One finished call. ``fault``: the backend's fault (connection, 5xx, timeout), which feeds the breaker."""
        was_available = backend.available()
        backend.counters.requests += 1
        BACKEND_LATENCY.labels(backend=backend.name).observe(seconds)
        if ttft_s is not None:
            BACKEND_TTFT.labels(backend=backend.name).observe(ttft_s)
        if ok:
            backend.breaker.record_success()
        else:
            backend.counters.errors += 1
            if fault:
                backend.breaker.record_failure()
        self.monitor.observe_call(backend.name, ok, seconds)
        if was_available != backend.available():
            logger.warning(
                "backend %s %s rotation (breaker %s)",
                backend.name,
                "back in" if backend.available() else "out of",
                backend.breaker.state,
            )
            self.publish()

    def count_outcome(self, backend: Backend, outcome: str) -> None:
        """``backend_calls_total``: ok, error or failover."""
        BACKEND_CALLS.labels(backend=backend.name, outcome=outcome).inc()
        if outcome == "failover":
            backend.counters.failovers += 1

    def check_rollback(self, negative_feedback: int = 0, wall_clock: Clock = time.time) -> Rollback | None:
        """Roll the canary back (weight 0, alert metric) when a trigger fires; the caller audits the result."""
        canary = self.by_name.get(self.canary) if self.canary else None
        if canary is None or canary.weight <= 0:
            return None
        trigger: Trigger | None = self.monitor.check(canary.name, negative_feedback)
        if trigger is None:
            return None
        previous = canary.weight
        self.set_weight(canary.name, 0.0)
        self.monitor.reset(canary.name)
        BACKEND_ROLLBACKS.labels(backend=canary.name, reason=trigger.reason).inc()
        BACKEND_ROLLBACK_ACTIVE.labels(backend=canary.name).set(1)
        self.last_rollback = Rollback(canary.name, trigger.reason, trigger.detail, previous, wall_clock())
        logger.error(
            "automatic rollback of backend %s (weight %.2f → 0): %s, %s",
            canary.name, previous, trigger.reason, trigger.detail,
        )  # fmt: skip
        return self.last_rollback

    def snapshot(self) -> dict[str, Any]:
        """State for ``GET /admin/backends``."""
        shares = self.shares()
        out: list[dict[str, Any]] = []
        for b in self.backends:
            w = self.monitor.stats(b.name)
            out.append(
                {
                    "name": b.name,
                    "kind": b.spec.kind,
                    "role": b.spec.role,
                    "base_url": b.spec.base_url,
                    "model": b.spec.model,
                    "weight": round(b.weight, 4),
                    "share": round(shares[b.name], 4),
                    "healthy": b.healthy,
                    "breaker": b.breaker.state,
                    "in_rotation": b.available(),
                    "restarts": len(b.restarts),
                    "last_error": b.last_error,
                    "counters": vars(b.counters).copy(),
                    "window": {"requests": w.requests, "error_rate": round(w.error_rate, 4), "p95_s": w.p95_s},
                }
            )
        last = self.last_rollback
        return {
            "primary": self.primary.name,
            "canary": self.canary,
            "backends": out,
            "last_rollback": None if last is None else vars(last).copy(),
        }
