"""Admin routes (one scheme: ``require_admin``): the emergency stop.

The stop is shared by every API replica (``core.state_sync``): the replica that gets the request stops at once,
writes the shared state and waits up to about two poll intervals for the other replicas' heartbeats to show
the new version. The reply's ``shared`` says how many live replicas there are and how many confirmed; with the
store unreachable it says ``"store": "unreachable"`` and only this replica (and its host's flag file) changed.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.security import require_admin
from core import requestctx
from core.state_sync import STOP_KEY, ReplicaSync

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class StopRequest(BaseModel):
    """Why the assistant is being stopped (kept in the audit log)."""

    reason: str = Field(default="", max_length=200)


class StopState(BaseModel):
    """Whether the assistant is stopped."""

    active: bool
    reason: str = ""
    shared: dict[str, Any] | None = None  # store, version, replicas_alive, replicas_confirmed (changes only)


async def _share(request: Request, active: bool, reason: str) -> dict[str, Any] | None:
    """Write the stop to the shared state and count the replicas that applied it (``None`` without a sync)."""
    sync: ReplicaSync | None = getattr(request.app.state, "shared", None)
    if sync is None:
        return None
    entry = await sync.publish_stop(active, reason)
    confirmation = (await sync.confirmations(STOP_KEY, entry)).as_dict()
    requestctx.annotate(shared_state=confirmation)
    return confirmation


@router.get("/emergency-stop")
async def stop_state(request: Request) -> StopState:
    """Report the emergency-stop state."""
    estop = request.app.state.estop
    sync: ReplicaSync | None = getattr(request.app.state, "shared", None)
    shared = None if sync is None else (await sync.status(STOP_KEY)).as_dict()
    return StopState(active=estop.active(), reason=estop.reason, shared=shared)


@router.post("/emergency-stop")
async def stop(request: Request, body: StopRequest) -> StopState:
    """Stop answering at once: every question route returns 503 until resumed."""
    request.app.state.estop.activate(body.reason)
    requestctx.annotate(admin_action="emergency_stop", admin_reason=body.reason)
    logger.warning("emergency stop activated")
    return StopState(active=True, reason=body.reason, shared=await _share(request, True, body.reason))


@router.delete("/emergency-stop")
async def resume(request: Request) -> StopState:
    """Resume answering."""
    request.app.state.estop.resume()
    requestctx.annotate(admin_action="resume")
    logger.warning("emergency stop lifted")
    return StopState(active=request.app.state.estop.active(), shared=await _share(request, False, ""))
