"""One ingest at a time: a lock around everything ``ingest.publish`` reads and writes.

Two ingests that interleave both copy the same active version and the last one to move the pointer
wins, dropping the other's changes. The lock makes the second one stop instead, with a message that
says who holds the lock. Which lock (``INGEST_LOCK``):

- ``file`` (the default on one machine): ``fcntl.flock`` on ``<CHROMA_PATH>.<collection>.ingest.lock``, next to
  the embedded index. The kernel releases it when the process dies, so a crashed ingest never blocks the next.
- ``postgres``: a session-level advisory lock (``pg_try_advisory_lock``) on ``DATABASE_URL``; released when the
  connection closes, a crashed ingest included. For ingests on several machines against one Chroma server.
- ``redis``: a lock key with a 60 s TTL on ``REDIS_URL``, renewed every 20 s while the ingest runs.
- ``auto``: ``postgres`` when ``DATABASE_URL`` is PostgreSQL, else ``redis`` when ``REDIS_URL`` is set, else ``file``.

A busy lock is tried again every 0.5 s for ``INGEST_LOCK_WAIT_S`` seconds (default 0: fail at once). Failing
fast is the default because the daily feed ingest runs from a scheduler: a second run that queued behind the
first would only redo its work, and the next scheduled run picks up whatever changed since.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

RETRY_S = 0.5
REDIS_TTL_S = 60


class IngestLockError(RuntimeError):
    """The ingest could not take its lock (the store of a shared lock is down, or another ingest holds it)."""


class IngestLockBusyError(IngestLockError):
    """Another ingest holds the lock."""


class _Lock(Protocol):
    where: str

    def try_acquire(self) -> bool: ...
    def holder(self) -> str: ...
    def release(self) -> None: ...


def _me() -> str:
    return f"pid {os.getpid()} on {os.uname().nodename} since {datetime.now(UTC).isoformat(timespec='seconds')}"


class FileLock:
    """``fcntl.flock`` on a lock file; the file keeps the holder's description for the message."""

    def __init__(self, path: Path) -> None:
        self.path, self.where = path, f"file lock {path}"
        self._fh: Any = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; ``False`` when another ingest holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(_me())
        fh.flush()
        self._fh = fh
        return True

    def holder(self) -> str:
        """Who holds the lock, as far as it can tell."""
        with contextlib.suppress(OSError):
            return self.path.read_text(encoding="utf-8").strip() or "unknown"
        return "unknown"

    def release(self) -> None:
        """Give the lock back."""
        if self._fh is not None:
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None


class PostgresLock:
    """A session-level PostgreSQL advisory lock, keyed by the index name."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.where = url, f"PostgreSQL advisory lock {name!r}"
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self._conn: Any = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; ``False`` when another ingest holds it."""
        import psycopg  # the API's dependency; imported only where a PostgreSQL lock is used

        conn = psycopg.connect(self.url, autocommit=True)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if not (row and row[0]):
            conn.close()
            return False
        self._conn = conn
        return True

    def holder(self) -> str:
        """Who holds the lock, as far as it can tell."""
        return "another database session (see pg_locks where locktype = 'advisory')"

    def release(self) -> None:
        """Give the lock back."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            self._conn.close()  # a closed session releases its advisory locks in any case
            self._conn = None


class RedisLock:
    """A Redis key set with NX and a TTL that a background thread renews while the ingest runs."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.key, self.where = url, f"shop-assistant:ingest-lock:{name}", f"Redis lock {name!r}"
        self._token, self._stop = _me(), threading.Event()
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            import redis  # the rate limiter's dependency; imported only where a Redis lock is used

            self._client = redis.Redis.from_url(self.url, decode_responses=True)
        return self._client

    def try_acquire(self) -> bool:
        """Take the lock if it is free; ``False`` when another ingest holds it."""
        if not self._redis().set(self.key, self._token, nx=True, ex=REDIS_TTL_S):
            return False
        threading.Thread(target=self._renew, daemon=True, name="ingest-lock-renew").start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(REDIS_TTL_S / 3):
            with contextlib.suppress(Exception):
                if self._redis().get(self.key) == self._token:
                    self._redis().expire(self.key, REDIS_TTL_S)

    def holder(self) -> str:
        """Who holds the lock, as far as it can tell."""
        with contextlib.suppress(Exception):
            return str(self._redis().get(self.key) or "unknown")
        return "unknown"

    def release(self) -> None:
        """Give the lock back."""
        self._stop.set()
        with contextlib.suppress(Exception):
            if self._redis().get(self.key) == self._token:
                self._redis().delete(self.key)


def make_lock(kind: str, *, name: str, chroma_path: Path, database_url: str = "", redis_url: str = "") -> _Lock:
    """The lock ``kind`` (``auto``, ``file``, ``postgres``, ``redis``) for the index ``name``."""
    if kind == "auto":
        kind = "postgres" if database_url.startswith("postgres") else "redis" if redis_url else "file"
    if kind == "postgres":
        if not database_url.startswith("postgres"):
            raise ValueError("INGEST_LOCK=postgres needs DATABASE_URL=postgresql://…")
        return PostgresLock(database_url, f"shop-assistant-ingest:{name}")
    if kind == "redis":
        if not redis_url:
            raise ValueError("INGEST_LOCK=redis needs REDIS_URL")
        return RedisLock(redis_url, name)
    return FileLock(chroma_path.parent / f"{chroma_path.name}.{name}.ingest.lock")


def _try(lock: _Lock) -> bool:
    try:
        return lock.try_acquire()
    except Exception as exc:  # PostgreSQL / Redis unreachable: no lock, no ingest (never an unlocked one)
        raise IngestLockError(f"could not take the {lock.where}: {exc}") from exc


@contextlib.contextmanager
def held(lock: _Lock, wait_s: float = 0.0) -> Iterator[str]:
    """Hold ``lock`` for the block; ``IngestLockBusyError`` when it is still busy after ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while not _try(lock):
        if time.monotonic() >= deadline:
            raise IngestLockBusyError(
                f"another ingest is running ({lock.where}, held by {lock.holder()}); "
                "this one stops without writing anything"
            )
        time.sleep(RETRY_S)
    try:
        yield lock.where
    finally:
        lock.release()
