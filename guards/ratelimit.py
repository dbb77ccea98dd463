"""Per-client rate limits (moving window, ``limits``) with exponential backoff for repeat offenders.

In memory by default; Redis when ``REDIS_URL`` is set so that API replicas share one budget.
When Redis cannot be reached the limiter fails closed to a stricter local budget.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Literal, cast

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.storage import storage_from_string

logger = logging.getLogger(__name__)

BACKEND_TIMEOUT_S = 0.25
FALLBACK_FACTOR = 0.5  # local budget when Redis is down: half of the configured limits
Verdict = Literal["allow", "limited", "blocked"]


@dataclass(frozen=True, kw_only=True)
class RateDecision:
    """The outcome of one check."""

    verdict: Verdict
    retry_after_s: int = 0
    backend: Literal["memory", "redis", "fallback"] = "memory"
    reason: str = ""


class RateLimiter:
    """Moving-window limits per client key, plus a backoff block after repeated strikes."""

    def __init__(
        self,
        *,
        per_minute: int,
        per_hour: int,
        redis_url: str | None = None,
        strikes_before_backoff: int = 3,
        backoff_base_s: int = 30,
        backoff_max_s: int = 3600,
    ) -> None:
        self.items: list[RateLimitItem] = [RateLimitItemPerMinute(per_minute), RateLimitItemPerHour(per_hour)]
        self.fallback_items: list[RateLimitItem] = [
            RateLimitItemPerMinute(max(1, math.floor(per_minute * FALLBACK_FACTOR))),
            RateLimitItemPerHour(max(1, math.floor(per_hour * FALLBACK_FACTOR))),
        ]
        self.strikes_before_backoff = strikes_before_backoff
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._local = MemoryStorage()
        self._local_window = MovingWindowRateLimiter(self._local)
        self._local_fixed = FixedWindowRateLimiter(self._local)
        self._remote: Storage | None = None
        if redis_url:
            uri = redis_url.replace("redis://", "async+redis://", 1) if redis_url.startswith("redis://") else redis_url
            self._remote = cast(
                Storage, storage_from_string(uri, implementation="redispy", socket_timeout=BACKEND_TIMEOUT_S)
            )
        self.backend: Literal["memory", "redis"] = "redis" if self._remote else "memory"

    async def _with_backend(self, key: str) -> RateDecision:
        if self._remote is None:
            return await self._check(self._local_window, self._local_fixed, self.items, key, "memory")
        remote_window = MovingWindowRateLimiter(self._remote)
        remote_fixed = FixedWindowRateLimiter(self._remote)
        try:
            return await asyncio.wait_for(
                self._check(remote_window, remote_fixed, self.items, key, "redis"), BACKEND_TIMEOUT_S * 4
            )
        except Exception as exc:
            logger.warning("rate-limit backend unavailable (%s); using the stricter local budget", type(exc).__name__)
            return await self._check(self._local_window, self._local_fixed, self.fallback_items, key, "fallback")

    async def _check(
        self,
        window: MovingWindowRateLimiter,
        fixed: FixedWindowRateLimiter,
        items: list[RateLimitItem],
        key: str,
        backend: Literal["memory", "redis", "fallback"],
    ) -> RateDecision:
        block = await self._block_item(fixed, key)
        if block is not None:
            stats = await fixed.get_window_stats(block, "block", key)
            return RateDecision(
                verdict="blocked", retry_after_s=_retry(stats.reset_time), backend=backend, reason="backoff"
            )
        for item in items:
            if not await window.hit(item, "req", key):
                stats = await window.get_window_stats(item, "req", key)
                await self._strike(fixed, key)
                return RateDecision(
                    verdict="limited", retry_after_s=_retry(stats.reset_time), backend=backend, reason=str(item)
                )
        return RateDecision(verdict="allow", backend=backend)

    async def _block_item(self, fixed: FixedWindowRateLimiter, key: str) -> RateLimitItem | None:
        """The active backoff block for ``key``, if any."""
        for seconds in self._block_steps():
            item = RateLimitItemPerSecond(1, seconds)
            if not await fixed.test(item, "block", key):
                return item
        return None

    def _block_steps(self) -> list[int]:
        steps, s = [], self.backoff_base_s
        while s < self.backoff_max_s:
            steps.append(s)
            s *= 2
        return [*steps, self.backoff_max_s]

    async def _strike(self, fixed: FixedWindowRateLimiter, key: str) -> None:
        """Count a strike; from ``strikes_before_backoff`` on, block for base·2^k seconds."""
        strikes_item = RateLimitItemPerHour(10_000)
        await fixed.hit(strikes_item, "strikes", key)
        stats = await fixed.get_window_stats(strikes_item, "strikes", key)
        strikes = 10_000 - stats.remaining
        if strikes >= self.strikes_before_backoff:
            seconds = min(self.backoff_max_s, self.backoff_base_s * 2 ** (strikes - self.strikes_before_backoff))
            steps = self._block_steps()
            seconds = next((s for s in steps if s >= seconds), steps[-1])
            await fixed.hit(RateLimitItemPerSecond(1, seconds), "block", key)
            logger.info("backoff: %d strikes, blocking for %d s", strikes, seconds)

    async def check(self, key: str) -> RateDecision:
        """Count one request by ``key`` and say whether it may proceed."""
        return await self._with_backend(key)

    async def strike(self, key: str) -> None:
        """Record a guard failure (e.g. a refused injection) towards the backoff."""
        if self._remote is not None:
            try:
                await asyncio.wait_for(self._strike(FixedWindowRateLimiter(self._remote), key), BACKEND_TIMEOUT_S * 4)
                return
            except Exception:
                logger.warning("rate-limit backend unavailable while recording a strike; recorded locally")
        await self._strike(self._local_fixed, key)


def _retry(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))
