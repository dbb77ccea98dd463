"""Start-up and shutdown of the conversation service (part of the server's lifespan).

Opens the history store (SQLite or PostgreSQL), compiles the conversational graph with its
checkpointer, purges conversations past retention at start-up and then every
``HISTORY_PURGE_INTERVAL_S``, and masks personal data in the process's log handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from api.assistant import Assistant
from api.chat import ChatService
from core.history import HistoryStore, open_history, set_history_store
from core.metrics import HISTORY_PURGED
from core.settings import get_settings
from core.threads import handles_from_secret
from graph.builder import build_graph
from guards.redact import install_log_redaction

logger = logging.getLogger(__name__)

DAY_S = 86_400.0


async def purge_expired(store: HistoryStore, retention_s: float) -> int:
    """Delete conversations idle for longer than the retention; errors are logged, not raised."""
    try:
        purged = await store.purge(retention_s)
    except Exception as exc:
        logger.error("purging expired conversations failed: %s", type(exc).__name__)
        return 0
    HISTORY_PURGED.inc(purged)
    return purged


async def _purge_periodically(store: HistoryStore, retention_s: float, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await purge_expired(store, retention_s)


@contextlib.asynccontextmanager
async def conversations(app: FastAPI) -> AsyncIterator[ChatService]:
    """Run the conversation service for the lifetime of ``app`` (sets ``app.state.chat``)."""
    settings = get_settings()
    install_log_redaction()
    store = await open_history(settings)
    try:
        secret = settings.thread_hmac_key.get_secret_value() if settings.thread_hmac_key is not None else None
        compiled = build_graph(conversational=True).compile(checkpointer=store.saver, name="shop-assistant-chat")
        service = ChatService(store, handles_from_secret(secret), compiled, Assistant(compiled, durability="exit"))
        retention_s = settings.history_retention_days * DAY_S
        await purge_expired(store, retention_s)
        purger = asyncio.create_task(_purge_periodically(store, retention_s, settings.history_purge_interval_s))
        app.state.chat = service
        set_history_store(store)
        try:
            yield service
        finally:
            set_history_store(None)
            app.state.chat = None
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
    finally:
        await store.close()
