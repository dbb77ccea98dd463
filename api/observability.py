"""The ``/metrics`` route and the request-level metrics taken from each request's audit record.

The security gate calls ``observe_request`` once per request, after the response was sent, with the
same record it writes to the audit log; the labels are route templates, status codes and short
enumerations (guard reasons, rate-limit verdicts, backend names), never question text or IPs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.types import Scope

from core.metrics import (
    ANSWER_OUTCOMES,
    BACKEND_ERRORS,
    BACKEND_REQUESTS,
    BACKEND_TRAFFIC_SHARE,
    EMERGENCY_STOP,
    GUARD_VERDICTS,
    HTTP_LATENCY,
    HTTP_REQUESTS,
    RATE_LIMIT_REJECTIONS,
    RETRIEVAL_TOP_SCORE,
    SCOPE_ROUTES,
    TOKENS_GENERATED,
)
from core.settings import get_settings

router = APIRouter(tags=["ops"])
UNMATCHED = "unmatched"  # 404s, rejected and rate-limited requests: never the raw path


def route_template(scope: Scope) -> str:
    """The matched route's template (``/rag/stream``, ``/api/chat/{thread_id}``) or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED


def set_backend_share(shares: dict[str, float]) -> None:
    """Publish the configured traffic share per LLM backend (one backend today: all traffic)."""
    for backend, share in shares.items():
        BACKEND_TRAFFIC_SHARE.labels(backend=backend).set(share)


def observe_request(scope: Scope, record: dict[str, Any], seconds: float, *, estop_active: bool) -> None:
    """Count one finished request from its audit ``record``."""
    route = route_template(scope)
    status = str(record.get("status") or 500)
    HTTP_REQUESTS.labels(route=route, method=str(scope.get("method", "")), status=status).inc()
    HTTP_LATENCY.labels(route=route, status=status).observe(seconds)
    EMERGENCY_STOP.set(1 if estop_active else 0)
    verdict = (record.get("rate_limit") or {}).get("verdict")
    if verdict and verdict != "allow":
        RATE_LIMIT_REJECTIONS.labels(verdict=str(verdict)).inc()
    guard = record.get("guard")
    if guard:
        GUARD_VERDICTS.labels(stage="input", decision=guard["decision"], reason=_first(guard.get("reasons"))).inc()
    out = record.get("output_filter")
    if out:
        GUARD_VERDICTS.labels(stage="output", decision=out["decision"], reason=_first(out.get("reasons"))).inc()
    if record.get("mode"):
        ANSWER_OUTCOMES.labels(outcome=str(record["mode"])).inc()
    if record.get("scope") not in (None, "catalogue"):
        SCOPE_ROUTES.labels(route=str(record["scope"])).inc()
    if guard and guard.get("decision") != "refuse" and "nodes_ms" in record and "rerank" in record["nodes_ms"]:
        RETRIEVAL_TOP_SCORE.observe(float(record.get("top_score") or 0.0))
    backend = record.get("backend")
    if backend:
        BACKEND_REQUESTS.labels(backend=backend).inc()
        if record.get("llm_error") or status in ("502", "503", "504"):
            BACKEND_ERRORS.labels(backend=backend).inc()
        completion = (record.get("tokens") or {}).get("completion")
        if completion:
            TOKENS_GENERATED.labels(backend=backend).inc(int(completion))


def _first(reasons: Any) -> str:
    return str(reasons[0]) if reasons else "none"


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus exposition of this process (scraped on the internal network; nginx does not expose it)."""
    EMERGENCY_STOP.set(1 if request.app.state.estop.active() else 0)
    routed = getattr(request.app.state, "llm_router", None)  # set in the lifespan when LLM_BACKENDS routes
    if routed is not None:
        routed.publish()
    else:
        set_backend_share({get_settings().llm_model: 1.0})
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
