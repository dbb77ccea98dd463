"""In-flight cap: at most ``MAX_IN_FLIGHT`` question requests are answered at once; the rest get 503.

Pure ASGI middleware so that a stream holds its slot until its last byte was sent (or the client
went away). No queue: an overloaded replica says so at once (503 + ``Retry-After``) and the
client or load balancer retries elsewhere. It sits inside the ``SecurityGate`` so that rejected
requests still get their audit line (``blocked_by: overload``).
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from core import requestctx
from core.load import in_flight
from core.metrics import REQUESTS_IN_FLIGHT, REQUESTS_REJECTED_OVERLOAD

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2
BUSY_MESSAGE = "the assistant is busy, please try again in a moment"


def _busy_body(path: str) -> dict[str, object]:
    if path.startswith("/v1/"):  # OpenAI clients read error.message / error.type
        return {"error": {"message": BUSY_MESSAGE, "type": "server_overloaded", "param": None, "code": "overloaded"}}
    return {"error": BUSY_MESSAGE, "retry_after_s": RETRY_AFTER_S}


class InFlightCap:
    """Count POSTs under ``prefixes`` in ``core.load.in_flight``; refuse the one over ``cap``."""

    def __init__(self, app: ASGIApp, *, cap: int, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.cap = cap
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold a slot for the whole request, streams included."""
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        if not in_flight.try_enter(self.cap):
            REQUESTS_REJECTED_OVERLOAD.inc()
            requestctx.annotate(blocked_by="overload", in_flight=in_flight.count)
            logger.warning("in-flight cap %d reached: 503 for %s", self.cap, path)
            raw = json.dumps(_busy_body(path)).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": raw})
            return
        REQUESTS_IN_FLIGHT.set(in_flight.count)
        try:
            await self.app(scope, receive, send)
        finally:
            in_flight.leave()
            REQUESTS_IN_FLIGHT.set(in_flight.count)
