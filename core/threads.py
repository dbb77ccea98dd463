"""Conversation handles: server-issued, unguessable, and bound to the server's key.

A handle is ``th_<id>.<mac>``: ``id`` is 16 random bytes, ``mac`` the HMAC-SHA256 of the id under
``THREAD_HMAC_KEY`` (truncated to 16 bytes), both base64url. Only the id is stored (as the
checkpointer's ``thread_id``); a caller cannot pick an id, and cannot turn an id it learned some
other way into a handle without the key. The handle is a bearer secret: whoever holds it owns
the conversation, so it is never logged (``guards.redact`` masks it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets

logger = logging.getLogger(__name__)

PREFIX = "th_"
_ID_BYTES = 16
_MAC_BYTES = 16
_HANDLE = re.compile(r"^th_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class ThreadHandles:
    """Issues and verifies conversation handles with one server key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the thread key must be at least 16 bytes")
        self._key = key

    def _mac(self, thread_id: str) -> str:
        return _b64(hmac.new(self._key, thread_id.encode(), hashlib.sha256).digest()[:_MAC_BYTES])

    def issue(self) -> tuple[str, str]:
        """A new conversation: ``(handle for the caller, thread_id for storage)``."""
        thread_id = _b64(secrets.token_bytes(_ID_BYTES))
        return f"{PREFIX}{thread_id}.{self._mac(thread_id)}", thread_id

    def verify(self, handle: object) -> str | None:
        """The thread id of a genuine handle; ``None`` for anything else (forged, malformed, foreign key)."""
        if not isinstance(handle, str):
            return None
        match = _HANDLE.match(handle)
        if match is None:
            return None
        thread_id, mac = match.groups()
        return thread_id if hmac.compare_digest(mac, self._mac(thread_id)) else None


def handles_from_secret(secret: str | None) -> ThreadHandles:
    """Handles keyed by ``secret``; a random per-process key (with a warning) when it is unset."""
    if secret:
        return ThreadHandles(hashlib.sha256(b"thread-handles\x00" + secret.encode()).digest())
    logger.warning("THREAD_HMAC_KEY is not set: conversation handles stop working when this process restarts")
    return ThreadHandles(secrets.token_bytes(32))
