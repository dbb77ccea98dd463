"""Conversation storage: the LangGraph checkpointer plus two small tables in the same database.

SQLite (``AsyncSqliteSaver``, file ``HISTORY_DB_PATH``) by default; PostgreSQL (``AsyncPostgresSaver``
over a connection pool) when ``DATABASE_URL`` is set. Next to the checkpoints: ``chat_threads``
(when a conversation was last used, for retention) and ``chat_feedback`` (ratings of answers).
Opened once at start-up (the server's lifespan) and closed at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from core.settings import Settings

logger = logging.getLogger(__name__)

DDL = (
    "CREATE TABLE IF NOT EXISTS chat_threads (thread_id TEXT PRIMARY KEY, "
    "created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS chat_threads_updated ON chat_threads (updated_at)",
    "CREATE TABLE IF NOT EXISTS chat_feedback (thread_id TEXT NOT NULL, message_id TEXT NOT NULL, "
    "rating TEXT NOT NULL, comment TEXT, created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (thread_id, message_id))",
    "CREATE INDEX IF NOT EXISTS chat_feedback_created ON chat_feedback (created_at)",
)

Query = Callable[[str, tuple[Any, ...]], Awaitable[list[tuple[Any, ...]]]]


class HistoryStore:
    """The checkpointer of the conversational graph and the thread/feedback bookkeeping beside it."""

    def __init__(
        self, saver: BaseCheckpointSaver[Any], query: Query, close: Callable[[], Awaitable[None]], *, backend: str
    ) -> None:
        self.saver = saver
        self.backend = backend
        self._query = query
        self._close = close

    async def setup(self) -> None:
        """Create the checkpointer's tables and ours (idempotent)."""
        await self.saver.setup()  # type: ignore[attr-defined]
        for statement in DDL:
            await self._query(statement, ())

    async def touch(self, thread_id: str, now: float | None = None) -> None:
        """Record that the conversation was used now (creates it on first use)."""
        ts = time.time() if now is None else now
        await self._query(
            "INSERT INTO chat_threads (thread_id, created_at, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (thread_id) DO UPDATE SET updated_at = excluded.updated_at",
            (thread_id, ts, ts),
        )

    async def exists(self, thread_id: str) -> bool:
        """Whether the conversation is known (and not deleted or expired)."""
        return bool(await self._query("SELECT 1 FROM chat_threads WHERE thread_id = ?", (thread_id,)))

    async def delete(self, thread_id: str) -> bool:
        """Delete the conversation's checkpoints, feedback and record; ``False`` if it was unknown."""
        if not await self.exists(thread_id):
            return False
        await self.saver.adelete_thread(thread_id)
        await self._query("DELETE FROM chat_feedback WHERE thread_id = ?", (thread_id,))
        await self._query("DELETE FROM chat_threads WHERE thread_id = ?", (thread_id,))
        return True

    async def purge(self, max_age_s: float, now: float | None = None) -> int:
        """Delete every conversation idle for longer than ``max_age_s``; returns how many."""
        cutoff = (time.time() if now is None else now) - max_age_s
        rows = await self._query("SELECT thread_id FROM chat_threads WHERE updated_at < ?", (cutoff,))
        for (thread_id,) in rows:
            await self.delete(str(thread_id))
        if rows:
            logger.info("purged %d conversations past retention", len(rows))
        return len(rows)

    async def add_feedback(
        self, thread_id: str, message_id: str, rating: str, comment: str | None, now: float | None = None
    ) -> None:
        """Store (or replace) the rating of one answer."""
        await self._query(
            "INSERT INTO chat_feedback (thread_id, message_id, rating, comment, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (thread_id, message_id) DO UPDATE SET rating = excluded.rating, "
            "comment = excluded.comment, created_at = excluded.created_at",
            (thread_id, message_id, rating, comment, time.time() if now is None else now),
        )

    async def feedback(self, thread_id: str) -> list[tuple[str, str, str | None]]:
        """``(message_id, rating, comment)`` of a conversation's feedback."""
        rows = await self._query(
            "SELECT message_id, rating, comment FROM chat_feedback WHERE thread_id = ? ORDER BY created_at",
            (thread_id,),
        )
        return [(str(m), str(r), c) for m, r, c in rows]

    async def count_negative_feedback(self, window_s: float, now: float | None = None) -> int:
        """Thumbs-down ratings given in the last ``window_s`` seconds (all conversations)."""
        since = (time.time() if now is None else now) - window_s
        rows = await self._query(
            "SELECT COUNT(*) FROM chat_feedback WHERE rating = 'down' AND created_at >= ?", (since,)
        )
        return int(rows[0][0]) if rows else 0

    async def negative_feedback_threads(self, window_s: float, now: float | None = None) -> list[str]:
        """The conversation of each thumbs-down rating of the last ``window_s`` seconds (rollback triggers)."""
        since = (time.time() if now is None else now) - window_s
        rows = await self._query(
            "SELECT thread_id FROM chat_feedback WHERE rating = 'down' AND created_at >= ?", (since,)
        )
        return [str(r[0]) for r in rows]

    async def close(self) -> None:
        """Close the connection or pool."""
        await self._close()


async def _open_sqlite(settings: Settings) -> HistoryStore:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    # Off the event loop: LangGraph's dev server (Studio) refuses blocking calls at start-up.
    await asyncio.to_thread(settings.history_db_path.parent.mkdir, parents=True, exist_ok=True)
    conn = await aiosqlite.connect(settings.history_db_path)
    saver = AsyncSqliteSaver(conn)

    async def query(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with saver.lock:  # one connection: share the saver's lock
            async with conn.execute(sql, params) as cur:
                rows = [tuple(r) for r in await cur.fetchall()]
            await conn.commit()
        return rows

    return HistoryStore(saver, query, conn.close, backend="sqlite")


async def _open_postgres(url: str) -> HistoryStore:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        open=False,
        min_size=1,
        max_size=10,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    await pool.open(wait=True, timeout=10)
    saver = AsyncPostgresSaver(pool)

    async def query(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(sql.replace("?", "%s"), params)
            rows = await cur.fetchall() if cur.description else []
        return [tuple(r.values()) for r in rows]

    return HistoryStore(saver, query, pool.close, backend="postgres")


async def open_history(settings: Settings) -> HistoryStore:
    """Open (and set up) the store that ``settings`` name: PostgreSQL if ``DATABASE_URL`` is set, else SQLite."""
    url = settings.database_url.get_secret_value() if settings.database_url is not None else ""
    store = await (_open_postgres(url) if url else _open_sqlite(settings))
    try:
        await store.setup()
    except BaseException:
        await store.close()
        raise
    logger.info("conversation history: %s", store.backend)
    return store


_current: HistoryStore | None = None


def set_history_store(store: HistoryStore | None) -> None:
    """Install (or clear) the process's store; the server's lifespan does this."""
    global _current
    _current = store


def get_history_store() -> HistoryStore | None:
    """The process's store, if the server opened one."""
    return _current


async def recent_negative_feedback(window_s: float = 3600.0) -> int:
    """Thumbs-down ratings in the last ``window_s`` seconds (0 when no store is open): for rollback triggers."""
    return 0 if _current is None else await _current.count_negative_feedback(window_s)


async def recent_negative_feedback_threads(window_s: float = 3600.0) -> list[str]:
    """The conversations of the thumbs-down ratings in the last ``window_s`` seconds (per-backend rollback)."""
    return [] if _current is None else await _current.negative_feedback_threads(window_s)
