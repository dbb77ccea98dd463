"""The ingest lock on the real shared stores: a PostgreSQL advisory lock and a Redis key (ingest/lock.py)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from ingest.lock import REDIS_TTL_S, IngestLockBusyError, held, make_lock

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _require(ok: bool, what: str) -> None:
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is required under CI=true but not reachable")
        pytest.skip(f"{what} not reachable")


def _postgres_up() -> bool:
    import psycopg

    try:
        psycopg.connect(DATABASE_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_second_ingest_is_refused_while_the_first_holds_the_lock(kind, tmp_path: Path):
    _require(_postgres_up() if kind == "postgres" else _redis_up(), kind)
    name = f"it-{uuid.uuid4().hex[:8]}"
    urls = {"database_url": DATABASE_URL if kind == "postgres" else "", "redis_url": REDIS_URL}
    first, second = (make_lock("auto", name=name, chroma_path=tmp_path, **urls) for _ in range(2))
    assert first.where.startswith("PostgreSQL" if kind == "postgres" else "Redis")
    with held(first), pytest.raises(IngestLockBusyError, match="another ingest is running"), held(second):
        pass
    with held(second):  # released at the end of the first block
        pass
    if kind == "redis":
        import redis

        assert redis.Redis.from_url(REDIS_URL).ttl(f"shop-assistant:ingest-lock:{name}") == -2  # key gone
        assert REDIS_TTL_S >= 30
