"""Checks a LangServe request body before LangServe parses it.

LangServe reads ``/rag/…`` bodies itself: a body that is not UTF-8 or nests thousands of levels
deep used to end in a 500, a ``text/plain`` body was parsed anyway, and unknown top-level keys
were silently dropped. This middleware answers such requests with a clear JSON 4xx instead, and
passes the (already read) body on unchanged otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware import send_json

MAX_JSON_DEPTH = 32
LANGSERVE_KEYS = frozenset({"input", "config", "kwargs"})
STRICT_ENDPOINTS = ("/invoke", "/stream")
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


class InvalidBodyError(ValueError):
    """The body cannot be accepted; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays/objects in ``raw``, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def check_body(raw: bytes, content_type: str, allowed_keys: frozenset[str] | None = LANGSERVE_KEYS) -> Any:
    """Return the decoded JSON body, or raise ``InvalidBodyError``; ``allowed_keys=None`` allows any key."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise InvalidBodyError(415, "the request body must be JSON (Content-Type: application/json)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidBodyError(400, "the request body is not valid UTF-8") from None
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise InvalidBodyError(400, f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        body = json.loads(text)
    except ValueError:
        raise InvalidBodyError(422, "invalid request: the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidBodyError(422, "invalid request: the body must be a JSON object")
    unknown = sorted(set(body) - allowed_keys) if allowed_keys is not None else []
    if unknown:
        raise InvalidBodyError(422, f"invalid request: unknown field(s) {', '.join(unknown)}")
    return body


class LangServeBodyMiddleware:
    """Validate POST bodies under the LangServe mounts.

    Under ``strict_prefixes`` (the public mount: invoke and stream only) unknown top-level keys are
    refused too; under ``prefixes`` (the admin mount, whose batch and stream_log endpoints take more
    keys) only the content type, the encoding, the nesting depth and the JSON syntax are checked.
    """

    def __init__(
        self, app: ASGIApp, strict_prefixes: tuple[str, ...] = ("/rag/",), prefixes: tuple[str, ...] = ("/admin/rag/",)
    ) -> None:
        self.app = app
        self.strict_prefixes = strict_prefixes
        self.prefixes = (*strict_prefixes, *prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        path = scope.get("path", "")
        strict = path.startswith(self.strict_prefixes)
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or not path.startswith(self.prefixes)
            or (strict and not path.endswith(STRICT_ENDPOINTS))  # other paths: LangServe's 404
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
        try:
            check_body(raw, content_type, LANGSERVE_KEYS if strict else None)
        except InvalidBodyError as exc:
            await send_json(send, exc.status, {"error": exc.message}, [])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
