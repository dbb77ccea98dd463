"""The security gate every request passes: emergency stop, rate limit, and the audit line.

Pure ASGI middleware so that no route, streaming or not, skips it: the audit line is
written when the response has been sent completely (or failed), also for rejected and
rate-limited requests.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.client_identity import client_ip, client_key, forwarded_proto, parse_networks
from api.observability import observe_request
from core import requestctx
from guards.audit import AuditLog, hash_ip
from guards.ratelimit import RateLimiter

logger = logging.getLogger(__name__)

ESTOP_CACHE_S = 0.5
ESTOP_EXEMPT = ("/health", "/admin/", "/metrics")
ESTOP_MESSAGE = "The assistant is temporarily switched off for maintenance. Please try again later."


class EmergencyStop:
    """An in-process switch plus a flag file (so an operator can ``touch`` it on the host)."""

    def __init__(self, flag_file: Path) -> None:
        self.flag_file = flag_file
        self._active = False
        self.reason = ""
        self._file_seen = (0.0, False)

    def activate(self, reason: str) -> None:
        """Stop answering; writes the flag file so every worker on this host follows."""
        self._active, self.reason = True, reason
        self.flag_file.parent.mkdir(parents=True, exist_ok=True)
        self.flag_file.write_text(reason or "stopped", encoding="utf-8")
        self._file_seen = (0.0, True)

    def resume(self) -> None:
        """Answer again."""
        self._active, self.reason = False, ""
        self.flag_file.unlink(missing_ok=True)
        self._file_seen = (0.0, False)

    def apply_shared(self, active: bool, reason: str, *, initial: bool) -> None:
        """Follow the shared state (``core.state_sync``): a stop another replica sent, or its resume.

        A stop is written to the flag file too, so that this replica comes up stopped after a restart even
        with the shared store unreachable. At start-up (``initial``) a "not stopped" shared state leaves a
        flag file an operator touched on this host alone; a resume sent later removes it, as a local one does.
        """
        if active:
            if not self._active or self.reason != reason:
                logger.warning("emergency stop activated by another replica")
            self.activate(reason)
        elif initial:
            self._active, self.reason = False, ""
        elif self._active or self.flag_file.exists():
            logger.warning("emergency stop lifted by another replica")
            self.resume()

    def active(self) -> bool:
        """True when stopped by the switch or the flag file (checked at most every 0.5 s)."""
        if self._active:
            return True
        checked, present = self._file_seen
        now = time.monotonic()
        if now - checked > ESTOP_CACHE_S:
            present = self.flag_file.exists()
            self._file_seen = (now, present)
        return present


async def _json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": raw})


# Refusals caused by the service itself (the classifier could not answer in time or is missing) fail closed
# but are not the client's fault: they do not count towards the client's backoff.
SERVICE_FAULTS = frozenset({"classifier_timeout", "classifier_unavailable", "classifier_error"})


def _client_strike(guard: dict[str, Any]) -> bool:
    """A guard refusal that the client caused (rules or classifier flagged the question)."""
    return guard.get("decision") == "refuse" and bool(set(guard.get("reasons") or []) - SERVICE_FAULTS)


class SecurityGate:
    """Emergency stop → rate limit → app, with one audit line per request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        audit: AuditLog,
        estop: EmergencyStop,
        limited_prefixes: tuple[str, ...],
        trusted_proxies: list[str],
        ipv6_prefix_len: int = 64,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.audit = audit
        self.estop = estop
        self.limited_prefixes = limited_prefixes
        self.trusted = parse_networks(trusted_proxies)
        self.ipv6_prefix_len = ipv6_prefix_len

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Gate one HTTP request and audit it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path: str = scope.get("path", "")
        if (proto := forwarded_proto(scope, self.trusted)) is not None:
            scope["scheme"] = proto  # uvicorn runs with --no-proxy-headers: the trusted proxy's scheme, here
        # Rate limits and the audit line count per client key (an IPv6 client's /64), never the raw address.
        ip_key = hash_ip(client_key(client_ip(scope, self.trusted), self.ipv6_prefix_len), self.audit.hmac_key)
        record: dict[str, Any] = {
            "request_id": scope.get("state", {}).get("request_id"),
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "ip_hmac": ip_key,
            "method": scope.get("method"),
            "route": path,
            "status": None,
        }
        status_box = {"status": 500}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
            await send(message)

        token = requestctx.begin(record)
        try:
            if self.estop.active() and not path.startswith(ESTOP_EXEMPT):
                record["blocked_by"] = "emergency_stop"
                await _json(tracking_send, 503, {"error": ESTOP_MESSAGE}, [(b"retry-after", b"60")])
                return
            if path.startswith(self.limited_prefixes) and scope.get("method") == "POST":
                decision = await self.limiter.check(ip_key)
                record["rate_limit"] = {"verdict": decision.verdict, "backend": decision.backend}
                if decision.verdict != "allow":
                    body = {
                        "error": "too many requests, please slow down",
                        "retry_after_s": decision.retry_after_s,
                    }
                    headers = [(b"retry-after", str(decision.retry_after_s).encode())]
                    await _json(tracking_send, 429, body, headers)
                    return
            await self.app(scope, receive, tracking_send)
        finally:
            record["status"] = status_box["status"]
            record["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            try:
                observe_request(scope, record, time.perf_counter() - t0, estop_active=self.estop.active())
            except Exception:
                logger.warning("could not update the request metrics", exc_info=True)
            if _client_strike(record.get("guard") or {}):
                try:
                    await self.limiter.strike(ip_key)
                except Exception:
                    logger.warning("could not record a guard strike")
            self.audit.write(record)
            requestctx.end(token)
