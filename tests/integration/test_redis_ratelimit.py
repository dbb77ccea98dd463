"""The Redis path of the rate limiter, against the real Redis server on 127.0.0.1:6379."""

from __future__ import annotations

import os
import uuid

import pytest

from fakes_serving import redis_up
from guards.ratelimit import RateLimiter

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True)
def _need_redis():
    if not redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis is not running on 127.0.0.1:6379 (required under CI=true)")
        pytest.skip("Redis is not running on 127.0.0.1:6379")


async def test_two_replicas_share_one_budget():
    key = f"it-{uuid.uuid4().hex}"
    a = RateLimiter(per_minute=4, per_hour=100, redis_url=REDIS_URL)
    b = RateLimiter(per_minute=4, per_hour=100, redis_url=REDIS_URL)
    verdicts = [(await (a if i % 2 else b).check(key)).verdict for i in range(6)]
    assert verdicts == ["allow"] * 4 + ["limited", "limited"]
    assert (await a.check(key)).backend == "redis"


async def test_backoff_is_shared_too():
    key = f"it-{uuid.uuid4().hex}"
    a = RateLimiter(per_minute=100, per_hour=1000, redis_url=REDIS_URL, strikes_before_backoff=2, backoff_base_s=60)
    b = RateLimiter(per_minute=100, per_hour=1000, redis_url=REDIS_URL, strikes_before_backoff=2, backoff_base_s=60)
    await a.strike(key)
    await b.strike(key)
    decision = await a.check(key)
    assert decision.verdict == "blocked" and decision.retry_after_s > 50
