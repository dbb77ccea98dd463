"""Active health checks of the LLM backends and the rollback loop (issue #6), run in the server's lifespan.

Every ``BACKEND_HEALTH_INTERVAL_S`` each backend is asked ``GET {base_url}/models`` (OpenAI kind) or
``GET {base_url}/api/tags`` (Ollama kind). A failed check takes the backend out of rotation at once;
a passing one puts it back (and closes a cooled-down breaker). A backend that comes back after being
down counts as a restart for the rollback triggers. After each round the router checks the canary's
rollback triggers; a rollback is logged, counted and written to the audit log.

``index_check`` is the index's part of ``/ready``: chunks in the active version, or why there are none to serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from core.backends import Backend
from core.router import Rollback, Router
from core.settings import Settings
from core.vectorstore import IndexNotReadyError, IndexPointerError, VectorStore

logger = logging.getLogger(__name__)

NegativeFeedback = Callable[[float], Awaitable[list[str]]]  # window → conversations rated thumbs down


def index_check(store: VectorStore) -> tuple[int, str]:
    """Chunks in the active index version and ``/ready``'s line for them (not ready unless the count is > 0).

    A broken pointer is not ready with its reason: the store never falls back to another collection.
    """
    try:
        count = store.count()
    except IndexPointerError as exc:
        return 0, f"index pointer broken: {exc}"
    except IndexNotReadyError as exc:
        return 0, f"not ready: {exc}"
    return count, f"ok ({count} chunks)" if count else "empty"


def health_url(backend: Backend) -> str:
    """The URL the health check asks."""
    base = backend.spec.base_url.rstrip("/")
    return f"{base}/api/tags" if backend.spec.kind == "ollama" else f"{base}/models"


async def probe(client: httpx.AsyncClient, backend: Backend, timeout_s: float) -> str | None:
    """``None`` when the backend answers 200, else a short reason."""
    key = backend.spec.api_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"} if key and key != "not-needed" else {}
    try:
        resp = await client.get(health_url(backend), headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if resp.status_code == 200 else f"status {resp.status_code}"


def apply_check(router: Router, backend: Backend, error: str | None, now: float) -> None:
    """Update ``backend`` with one health-check result."""
    was_healthy = backend.healthy
    backend.healthy = error is None
    backend.last_check = now
    if error is None:
        backend.breaker.healthy_again()
        if not was_healthy:
            backend.restarts.append(now)
            router.monitor.observe_restart(backend.name)
            logger.warning("backend %s is healthy again: back in rotation", backend.name)
    else:
        backend.last_error = error
        if was_healthy:
            logger.error("backend %s failed its health check (%s): out of rotation", backend.name, error)
    router.publish()


async def check_all(router: Router, client: httpx.AsyncClient, timeout_s: float) -> None:
    """One round of health checks, all backends at once."""
    results = await asyncio.gather(*(probe(client, b, timeout_s) for b in router.backends))
    now = time.time()
    for backend, error in zip(router.backends, results, strict=True):
        apply_check(router, backend, error, now)


async def run_checks(
    router: Router,
    client: httpx.AsyncClient,
    settings: Settings,
    on_rollback: Callable[[Rollback], object],
    negative_feedback: NegativeFeedback,
) -> None:
    """Health checks and rollback triggers, every ``BACKEND_HEALTH_INTERVAL_S``, until cancelled."""
    while True:
        try:
            await check_all(router, client, settings.backend_health_timeout_s)
            try:
                threads = await negative_feedback(settings.rollback_window_s)
            except Exception as exc:
                logger.warning("could not read negative feedback: %s", type(exc).__name__)
                threads = []
            event = router.check_rollback(canary_share(router, threads))
            if event is not None:
                on_rollback(event)
        except Exception:
            logger.exception("backend health round failed")
        await asyncio.sleep(settings.backend_health_interval_s)


def canary_share(router: Router, threads: list[str]) -> int:
    """How many distinct conversations of ``threads`` (one entry per thumbs down) the canary answers.

    Conversations, not thumbs: one unhappy shopper rating ten answers of one conversation counts once, so a
    single conversation cannot force a rollback. Sticky routing tells which backend answered a conversation.
    """
    canary = router.by_name.get(router.canary) if router.canary else None
    return 0 if canary is None else sum(1 for t in set(threads) if router.pick(t) is canary)


def rollback_record(event: Rollback) -> dict[str, Any]:
    """The audit line of an automatic rollback."""
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "route": "internal:backend-rollback",
        "admin_action": "backend_rollback",
        "backend": event.backend,
        "rollback_reason": event.reason,
        "rollback_detail": event.detail,
        "previous_weight": event.previous_weight,
    }


@contextlib.asynccontextmanager
async def backend_monitoring(
    router: Router | None,
    settings: Settings,
    audit_write: Callable[[dict[str, Any]], object],
    negative_feedback: NegativeFeedback,
) -> AsyncIterator[None]:
    """Run the health checks for the lifetime of the block (nothing to do with one backend, ``router=None``)."""
    if router is None:
        yield
        return
    client = httpx.AsyncClient()
    task = asyncio.create_task(
        run_checks(router, client, settings, lambda e: audit_write(rollback_record(e)), negative_feedback)
    )
    logger.info("backend health checks every %.1f s: %s", settings.backend_health_interval_s,
                ", ".join(b.name for b in router.backends))  # fmt: skip
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()
