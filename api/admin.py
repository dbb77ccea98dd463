"""Admin routes (one scheme: ``require_admin``): the emergency stop."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.security import require_admin
from core import requestctx

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class StopRequest(BaseModel):
    """Why the assistant is being stopped (kept in the audit log)."""

    reason: str = Field(default="", max_length=200)


class StopState(BaseModel):
    """Whether the assistant is stopped."""

    active: bool
    reason: str = ""


@router.get("/emergency-stop")
async def stop_state(request: Request) -> StopState:
    """Report the emergency-stop state."""
    estop = request.app.state.estop
    return StopState(active=estop.active(), reason=estop.reason)


@router.post("/emergency-stop")
async def stop(request: Request, body: StopRequest) -> StopState:
    """Stop answering at once: every question route returns 503 until resumed."""
    request.app.state.estop.activate(body.reason)
    requestctx.annotate(admin_action="emergency_stop", admin_reason=body.reason)
    logger.warning("emergency stop activated")
    return StopState(active=True, reason=body.reason)


@router.delete("/emergency-stop")
async def resume(request: Request) -> StopState:
    """Resume answering."""
    request.app.state.estop.resume()
    requestctx.annotate(admin_action="resume")
    logger.warning("emergency stop lifted")
    return StopState(active=False)
