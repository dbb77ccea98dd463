"""Automatic rollback triggers of a canary backend (issue #6), as pure logic over a sliding window.

The router feeds every finished call (outcome and duration) and every backend restart into a
``RollbackMonitor``; the health loop asks it regularly whether the canary must go. A trigger
fires when, inside ``ROLLBACK_WINDOW_S``: the error rate is above ``ROLLBACK_MAX_ERROR_RATE`` or the
P95 duration above ``ROLLBACK_MAX_P95_S`` (both once ``ROLLBACK_MIN_REQUESTS`` calls were seen), the
backend restarted more than ``ROLLBACK_MAX_RESTARTS`` times (health-check flaps), or more than
``ROLLBACK_MAX_NEGATIVE_FEEDBACK`` distinct conversations the canary answers got a thumbs down (conversations,
not thumbs: ``core.health.canary_share``). The clock is injected.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from core.settings import Settings

Reason = Literal["error_rate", "p95_latency", "restarts", "negative_feedback"]


@dataclass(frozen=True)
class Thresholds:
    """When a canary is rolled back; the defaults (settings) are for the GPU deployment."""

    window_s: float = 300.0
    min_requests: int = 20
    max_error_rate: float = 0.05
    max_p95_s: float = 20.0
    max_restarts: int = 3
    max_negative_feedback: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        """The thresholds of ``ROLLBACK_*``."""
        return cls(
            window_s=settings.rollback_window_s,
            min_requests=settings.rollback_min_requests,
            max_error_rate=settings.rollback_max_error_rate,
            max_p95_s=settings.rollback_max_p95_s,
            max_restarts=settings.rollback_max_restarts,
            max_negative_feedback=settings.rollback_max_negative_feedback,
        )


@dataclass(frozen=True)
class WindowStats:
    """One backend's calls inside the window."""

    requests: int
    errors: int
    error_rate: float
    p95_s: float | None
    restarts: int


@dataclass(frozen=True)
class Trigger:
    """A rollback trigger that fired: the reason and a short, log-safe detail."""

    reason: Reason
    detail: str


def p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile (``None`` for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class RollbackMonitor:
    """Sliding windows of calls and restarts per backend, and the trigger rules over them."""

    def __init__(self, thresholds: Thresholds, clock: Callable[[], float] = time.monotonic) -> None:
        self.thresholds = thresholds
        self.clock = clock
        self._calls: dict[str, deque[tuple[float, bool, float]]] = {}
        self._restarts: dict[str, deque[float]] = {}

    def observe_call(self, backend: str, ok: bool, seconds: float) -> None:
        """One finished call of ``backend`` (failed calls count with the time until they failed)."""
        self._calls.setdefault(backend, deque()).append((self.clock(), ok, seconds))

    def observe_restart(self, backend: str) -> None:
        """``backend`` came back after being down, or reported a new process start time."""
        self._restarts.setdefault(backend, deque()).append(self.clock())

    def _prune(self, backend: str) -> None:
        since = self.clock() - self.thresholds.window_s
        calls = self._calls.get(backend)
        while calls and calls[0][0] < since:
            calls.popleft()
        restarts = self._restarts.get(backend)
        while restarts and restarts[0] < since:
            restarts.popleft()

    def stats(self, backend: str) -> WindowStats:
        """What the window holds for ``backend`` now."""
        self._prune(backend)
        calls = list(self._calls.get(backend, ()))
        errors = sum(1 for _, ok, _ in calls if not ok)
        return WindowStats(
            requests=len(calls),
            errors=errors,
            error_rate=errors / len(calls) if calls else 0.0,
            p95_s=p95([s for _, _, s in calls]),
            restarts=len(self._restarts.get(backend, ())),
        )

    def check(self, backend: str, negative_feedback: int = 0) -> Trigger | None:
        """The first rule that fires for ``backend`` (``negative_feedback``: conversations with a thumbs down)."""
        t = self.thresholds
        w = self.stats(backend)
        if w.requests >= t.min_requests and w.error_rate > t.max_error_rate:
            return Trigger("error_rate", f"{w.errors}/{w.requests} calls failed (> {t.max_error_rate:.0%})")
        if w.requests >= t.min_requests and w.p95_s is not None and w.p95_s > t.max_p95_s:
            return Trigger("p95_latency", f"P95 {w.p95_s:.1f} s over {w.requests} calls (> {t.max_p95_s:g} s)")
        if w.restarts > t.max_restarts:
            return Trigger("restarts", f"{w.restarts} restarts (> {t.max_restarts})")
        if negative_feedback > t.max_negative_feedback:
            detail = f"{negative_feedback} conversations with a thumbs down (> {t.max_negative_feedback})"
            return Trigger("negative_feedback", detail)
        return None

    def reset(self, backend: str) -> None:
        """Forget ``backend``'s window (after a rollback, so that it does not fire again at once)."""
        self._calls.pop(backend, None)
        self._restarts.pop(backend, None)
