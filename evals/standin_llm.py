"""BENCHMARK FIXTURE: a stand-in OpenAI-compatible LLM server with a fixed first-token delay and token rate.

It is NOT a language model and never a default of the service: the load test and the service-cost
benchmark start it to show what our service costs when the LLM behaves like vLLM on a GPU
(e.g. 50 ms to the first token, 100 tokens/s per stream, no contention between streams).

    python -m evals.standin_llm --port 8051 --first-token-ms 50 --tokens-per-s 100

Serves ``GET /v1/models`` and ``POST /v1/chat/completions`` (``stream`` true or false) on
127.0.0.1. The answer is deterministic: ``max_tokens`` words (one word = one token) chosen from
a fixed list by a hash of the last user message, so every run and replica returns the same text.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

logger = logging.getLogger(__name__)

_TEXT = (
    "De kattenbak heeft een afvalbak van negen liter en is eenvoudig schoon te maken met warm water "
    "zonder agressieve middelen wij leveren binnen twee werkdagen in Nederland en België retourneren "
    "kan binnen dertig dagen na ontvangst en de garantie geldt twee jaar op alle producten"
)
WORDS = tuple(_TEXT.split())


@dataclass(frozen=True)
class Timing:
    """How the stand-in answers: delay to the first token and tokens per second per stream."""

    first_token_s: float = 0.05
    tokens_per_s: float = 100.0
    default_max_tokens: int = 64
    model: str = "standin"


def answer_tokens(messages: list[dict[str, Any]], n: int) -> list[str]:
    """``n`` deterministic tokens (words with their leading space) for this conversation."""
    last_user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    start = int(hashlib.sha256(last_user.encode()).hexdigest(), 16) % len(WORDS)
    return [(" " if i else "") + WORDS[(start + i) % len(WORDS)] for i in range(n)]


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """A rough prompt size (whitespace words) for the usage block."""
    return sum(len(str(m.get("content", "")).split()) for m in messages)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)


def create_app(timing: Timing) -> Starlette:
    """The stand-in's ASGI app."""

    async def models(request: Request) -> Response:
        card = {"id": timing.model, "object": "model", "created": 0, "owned_by": "standin-benchmark-fixture"}
        return JSONResponse({"object": "list", "data": [card]})

    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(400, "messages must be a non-empty list")
        if body.get("model") != timing.model:
            return _error(404, f"the model {body.get('model')!r} does not exist; served: {timing.model!r}")
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or timing.default_max_tokens
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return _error(400, "max_tokens must be a positive integer")
        tokens = answer_tokens(body["messages"], max_tokens)
        usage = {
            "prompt_tokens": prompt_tokens(body["messages"]),
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens(body["messages"]) + len(tokens),
        }
        cid, created = f"chatcmpl-standin-{uuid.uuid4().hex[:16]}", int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            stream = _stream(timing, tokens, cid, created, usage if include_usage else None)
            return StreamingResponse(stream, media_type="text/event-stream")
        await asyncio.sleep(timing.first_token_s + (len(tokens) - 1) / timing.tokens_per_s)
        message = {"role": "assistant", "content": "".join(tokens)}
        choice = {"index": 0, "message": message, "finish_reason": "length", "logprobs": None}
        head = {"id": cid, "object": "chat.completion", "created": created, "model": timing.model}
        return JSONResponse({**head, "choices": [choice], "usage": usage})

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"])])


async def _stream(
    timing: Timing, tokens: list[str], cid: str, created: int, usage: dict[str, int] | None
) -> AsyncIterator[str]:
    """Server-sent events on an absolute schedule: token i at first_token + i / rate (no drift)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def event(delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
        choices = [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": timing.model}
        return f"data: {json.dumps({**chunk, 'choices': choices, **extra})}\n\n"

    for i, token in enumerate(tokens):
        delay = t0 + timing.first_token_s + i / timing.tokens_per_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield event({"role": "assistant", "content": token} if i == 0 else {"content": token}, None)
    yield event({}, "length")
    if usage is not None:
        tail = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": timing.model}
        yield f"data: {json.dumps({**tail, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def main(argv: list[str] | None = None) -> int:
    """Run the stand-in on 127.0.0.1."""
    parser = argparse.ArgumentParser(description="BENCHMARK FIXTURE: stand-in OpenAI-compatible LLM server.")
    parser.add_argument("--port", type=int, default=8051)
    parser.add_argument("--first-token-ms", type=float, default=50.0)
    parser.add_argument("--tokens-per-s", type=float, default=100.0)
    parser.add_argument("--default-max-tokens", type=int, default=64)
    parser.add_argument("--served-model-name", default="standin")
    args = parser.parse_args(argv)
    if args.tokens_per_s <= 0 or args.first_token_ms < 0:
        parser.error("--tokens-per-s must be > 0 and --first-token-ms >= 0")
    import uvicorn

    timing = Timing(args.first_token_ms / 1000, args.tokens_per_s, args.default_max_tokens, args.served_model_name)
    print(
        f"stand-in LLM (benchmark fixture, not a model) on http://127.0.0.1:{args.port}/v1: "
        f"first token {args.first_token_ms:g} ms, {args.tokens_per_s:g} tokens/s, model {args.served_model_name!r}",
        flush=True,
    )
    uvicorn.run(
        create_app(timing), host="127.0.0.1", port=args.port, log_level="warning", access_log=False, backlog=4096
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
