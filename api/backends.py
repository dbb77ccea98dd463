"""Admin routes of the LLM backends (issue #6): state, and the canary's share changed at run time.

``GET /admin/backends`` lists the backends with health, breaker, weights, shares, counters and the
canary's rollback window. ``PUT /admin/backends/canary`` with ``{"backend": name, "weight": 0..1}``
gives that backend the share ``weight`` of new conversations (the others share the rest), without
a restart; calls in flight keep their backend. Each change is written to the audit log and to the shared state
(``core.state_sync``), from which the other API replicas take it on their next poll; the reply's ``shared``
counts the replicas that applied it.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from api.security import require_admin
from core import requestctx
from core.resources import get_resources
from core.router import Router
from core.routing import RoutedChatModel
from core.settings import get_settings
from core.state_sync import WEIGHTS_KEY, ReplicaSync

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/admin/backends", tags=["admin"], dependencies=[Depends(require_admin)])


class CanaryRequest(BaseModel):
    """The canary backend and its new share of new conversations."""

    backend: str = Field(min_length=1, max_length=64)
    weight: float = Field(ge=0.0, le=1.0)


def current_router() -> Router | None:
    """The router of ``Resources.llm``; ``None`` with a single backend."""
    llm = get_resources().llm
    return llm.router if isinstance(llm, RoutedChatModel) else None


def _routed() -> Router:
    found = current_router()
    if found is None:
        raise HTTPException(409, "one LLM backend configured: set LLM_BACKENDS to route between several")
    return found


RouterDep = Annotated[Router, Depends(_routed)]


@router.get("")
async def backends() -> dict[str, Any]:
    """Backends, health, breaker state, weights, shares and counters."""
    found = current_router()
    if found is not None:
        return {"routing": True, **found.snapshot()}
    settings = get_settings()
    single = {"name": settings.llm_model, "kind": "openai", "role": "primary", "base_url": settings.llm_base_url}
    return {"routing": False, "primary": settings.llm_model, "canary": None, "backends": [single]}


@router.put("/canary")
async def set_canary(body: CanaryRequest, routed: RouterDep, request: Request) -> dict[str, Any]:
    """Set the share of new conversations that ``body.backend`` answers (10% → 50% → 100%, or 0 to roll back)."""
    if body.backend not in routed.by_name:
        raise HTTPException(404, f"unknown backend {body.backend!r}: expected one of {sorted(routed.by_name)}")
    before = {b.name: round(b.weight, 4) for b in routed.backends}
    routed.set_weight(body.backend, body.weight)
    after = {b.name: round(b.weight, 4) for b in routed.backends}
    requestctx.annotate(admin_action="backend_canary", admin_backend=body.backend, weights_before=before,
                        weights_after=after)  # fmt: skip
    logger.warning("backend weights changed by an admin: %s → %s", before, after)
    sync: ReplicaSync | None = getattr(request.app.state, "shared", None)
    if sync is None:
        return {"routing": True, **routed.snapshot()}
    shared = (await sync.confirmations(WEIGHTS_KEY, await sync.publish_weights())).as_dict()
    requestctx.annotate(shared_state=shared)
    return {"routing": True, **routed.snapshot(), "shared": shared}
