"""FastAPI + LangServe app: the public ``/rag`` mount, the admin debug mount, health checks."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import openai
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from langserve import add_routes
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.admin import router as admin_router
from api.assistant import assistant
from api.backends import current_router
from api.backends import router as backends_router
from api.chat import router as chat_router
from api.conversations import conversations
from api.gate import EmergencyStop, SecurityGate
from api.inflight import InFlightCap
from api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from api.observability import router as metrics_router
from api.openai_compat import make_router as openai_router
from api.security import require_admin
from api.timeouts import RequestTimeoutError
from api.validation import LangServeBodyMiddleware
from api.widget import mount_widget
from core.health import backend_monitoring, index_check
from core.history import recent_negative_feedback_threads
from core.index_versions import IndexPointerError
from core.production import check_secrets
from core.resources import get_resources
from core.settings import Settings, get_settings
from core.shared_state import make_shared_state
from core.state_sync import ReplicaSync
from graph.builder import graph
from guards.audit import AuditLog, chain_key
from guards.audit_anchor import anchor_store, anchoring
from guards.ratelimit import RateLimiter

logger = logging.getLogger(__name__)
READY_TIMEOUT_S = 2.0
LIMITED_PREFIXES = ("/rag/", "/api/", "/v1/")


def _audit_key(settings: Settings) -> bytes:
    if settings.audit_hmac_key is not None and settings.audit_hmac_key.get_secret_value():
        return settings.audit_hmac_key.get_secret_value().encode()
    logger.warning("AUDIT_HMAC_KEY is not set: using a random per-process key (IP hashes change on restart)")
    return secrets.token_bytes(32)


async def server_config(config: dict[str, Any], request: Request) -> dict[str, Any]:
    """Per-request config set by the server; callers cannot send their own ``configurable``."""
    request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    config["metadata"] = {**config.get("metadata", {}), "request_id": request_id}
    config["configurable"] = {"thread_id": f"req-{request_id}"}
    config["run_name"] = "shop-assistant"
    return config


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Validate settings and build the heavy clients once, before the first request."""
    settings = get_settings()
    await asyncio.to_thread(get_resources)
    app.state.http = httpx.AsyncClient(timeout=READY_TIMEOUT_S)
    app.state.llm_router = current_router()  # None with one LLM backend (issue #6: LLM_BACKENDS)
    logger.info("ready: llm=%s model=%s", settings.llm_base_url, settings.llm_model)
    # One truth across replicas (issue #17): emergency stop, canary weights, rollbacks; polled and applied here.
    app.state.shared = ReplicaSync(
        make_shared_state(settings), app.state.estop, app.state.llm_router, settings.shared_state_poll_s
    )
    try:
        async with (
            app.state.shared.running(),
            # After the shared state: its store is still open for the final anchor at shutdown.
            anchoring(
                app.state.audit,
                anchor_store(app.state.shared.store, settings.audit_log_path),
                settings.audit_anchor_every_s,
            ),
            conversations(app),  # history store, conversational graph, retention purge
            backend_monitoring(app.state.llm_router, settings, app.state.audit.write, recent_negative_feedback_threads),
        ):
            yield
    finally:
        await app.state.http.aclose()
        app.state.audit.close()


def _error(
    status: int, message: str, detail: object | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, object] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def create_app() -> FastAPI:
    """Build the application."""
    settings = get_settings()
    check_secrets(settings)  # APP_ENV=production: no start without the deployment secrets (core/production.py)
    app = FastAPI(
        title="Kattenhuis shop assistant",
        version="0.1.0",
        description="Answers shoppers' questions from the shop's own documents, with sources.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", [])), "msg": e.get("msg", str(e))} if isinstance(e, dict) else {"msg": str(e)}
            for e in exc.errors()
        ]
        return _error(422, "invalid request", errors)

    @app.exception_handler(StarletteHTTPException)  # also Starlette's own 404/405, not only FastAPI's
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(openai.APIError)
    async def _llm_down(request: Request, exc: openai.APIError) -> JSONResponse:
        logger.error("LLM backend error: %s", type(exc).__name__)
        return _error(
            503, "the assistant is temporarily unavailable, please try again shortly", headers={"Retry-After": "10"}
        )

    @app.exception_handler(RequestTimeoutError)
    async def _too_slow(request: Request, exc: RequestTimeoutError) -> JSONResponse:
        logger.error("request timed out: %s", exc)
        return _error(
            503, "the assistant is temporarily unavailable, please try again shortly", headers={"Retry-After": "10"}
        )

    @app.exception_handler(IndexPointerError)
    async def _no_index(request: Request, exc: IndexPointerError) -> JSONResponse:
        logger.error("index pointer broken: %s", exc)  # never another collection's (stale) prices: /ready says so
        return _error(
            503, "the assistant is temporarily unavailable, please try again shortly", headers={"Retry-After": "30"}
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return _error(500, "internal error", {"request_id": getattr(request.state, "request_id", None)})

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready(request: Request) -> JSONResponse:
        """The LLM server answers and the index holds chunks."""
        checks: dict[str, str] = {}
        routed = getattr(request.app.state, "llm_router", None)  # several backends: their health checks decide
        if routed is not None:
            checks["llm"] = "ok" if any(b.available() for b in routed.backends) else "no backend in rotation"
        else:
            try:
                resp = await request.app.state.http.get(settings.llm_base_url.rstrip("/") + "/models")
                checks["llm"] = "ok" if resp.status_code == 200 else f"status {resp.status_code}"
            except httpx.HTTPError as exc:
                checks["llm"] = f"unreachable ({type(exc).__name__})"
        res = get_resources()
        count, checks["index"] = await asyncio.to_thread(index_check, res.store)
        checks["guard"] = "ok" if res.classifier is not None else "classifier unavailable: questions are refused"
        ok = checks["llm"] == "ok" and count > 0 and res.classifier is not None
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
        )

    app.include_router(admin_router)
    app.include_router(backends_router)
    app.include_router(metrics_router)
    app.include_router(openai_router(server_config))
    app.include_router(chat_router)
    mount_widget(app)  # GET / (the chat page) and /widget/ (its script and stylesheet)
    add_routes(
        app,
        assistant,
        path="/rag",
        enabled_endpoints=["invoke", "stream"],
        config_keys=[],
        per_req_config_modifier=server_config,
    )
    add_routes(
        app,
        graph,
        path="/admin/rag",
        per_req_config_modifier=server_config,
        dependencies=[Depends(require_admin)],
    )
    # LangServe registers an on_startup hook that only prints a banner; LangGraph's server (`langgraph dev`,
    # which mounts this app through langgraph.json) refuses apps that mix on_startup hooks with a lifespan.
    app.router.on_startup.clear()
    # Middleware runs outermost-last: request id → security gate → in-flight cap → CORS → body limit → app.
    app.add_middleware(LangServeBodyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],  # DELETE: the shop front end deletes its conversation
            allow_headers=["*"],
        )
    app.state.estop = EmergencyStop(settings.emergency_stop_file)
    app.state.audit = AuditLog(
        settings.audit_log_path,
        _audit_key(settings),
        chain_key=chain_key(settings),
        max_bytes=settings.audit_max_bytes,
        backups=settings.audit_backups,
    )
    app.state.limiter = RateLimiter(
        per_minute=settings.rate_limit_per_minute,
        per_hour=settings.rate_limit_per_hour,
        redis_url=settings.redis_url,
        strikes_before_backoff=settings.backoff_strikes,
        backoff_base_s=settings.backoff_base_s,
        backoff_max_s=settings.backoff_max_s,
    )
    # Inside the gate, so that a request refused for overload still gets its audit line.
    app.add_middleware(InFlightCap, cap=settings.max_in_flight, prefixes=LIMITED_PREFIXES)
    app.add_middleware(
        SecurityGate,
        limiter=app.state.limiter,
        audit=app.state.audit,
        estop=app.state.estop,
        limited_prefixes=LIMITED_PREFIXES,
        trusted_proxies=settings.trusted_proxies,
        ipv6_prefix_len=settings.ipv6_prefix_len,
    )
    app.add_middleware(RequestIdMiddleware)
    return app


app = create_app()
