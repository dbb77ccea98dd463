"""A small protocol shim that speaks Ollama's native API over llama.cpp's OpenAI-compatible server.

FOR TESTS AND THE MIGRATION DRILL ONLY: no registry ships the Ollama server itself, so the
``ollama`` backend kind (core/backends.py) is tested against this shim, in front of the llama.cpp
engine that Ollama itself is built on. It serves ``/api/version``, ``/api/tags``, ``/api/chat`` and
``/api/generate`` (NDJSON streaming, or one JSON object with ``"stream": false``) by forwarding to
``{upstream}/chat/completions``; options ``temperature``, ``top_p``, ``seed``, ``num_predict`` and
``stop`` are passed on. The official ``ollama`` Python client checks it (tests/unit/deploy).

    .venv/bin/python deploy/llm/ollama_shim.py --port 11435 --upstream http://127.0.0.1:8002/v1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

SHIM_VERSION = "0.6.3-shim"  # reported by /api/version: clearly not a real Ollama server
OPTION_MAP = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "num_predict": "max_tokens"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def openai_request(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The upstream ``/chat/completions`` body for an Ollama chat or generate request."""
    options = body.get("options") or {}
    out: dict[str, Any] = {"model": body.get("model", ""), "messages": messages, "stream": True}
    out["stream_options"] = {"include_usage": True}
    for ours, theirs in OPTION_MAP.items():
        if options.get(ours) is not None:
            out[theirs] = options[ours]
    if options.get("stop"):
        out["stop"] = list(options["stop"])[:4]
    return out


def chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Ollama chat messages (``role``, ``content``; images and tool calls are not supported)."""
    return [{"role": m.get("role", "user"), "content": m.get("content", "")} for m in body.get("messages") or []]


def generate_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``/api/generate``'s ``system`` and ``prompt`` as chat messages (the engine applies the chat template)."""
    system = [{"role": "system", "content": body["system"]}] if body.get("system") else []
    return [*system, {"role": "user", "content": body.get("prompt", "")}]


def create_app(upstream: str, timeout_s: float = 300.0) -> FastAPI:
    """The shim app forwarding to the OpenAI-compatible server at ``upstream`` (ends in ``/v1``)."""
    base = upstream.rstrip("/")
    # No keep-alive upstream: llama.cpp's server closes idle connections, and a reused one fails the next request.
    client = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_keepalive_connections=0))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(title="Ollama protocol shim over llama.cpp (tests only)", lifespan=lifespan)

    async def deltas(payload: dict[str, Any], usage: dict[str, int]) -> AsyncIterator[str]:
        async with client.stream("POST", f"{base}/chat/completions", json=payload) as resp:
            if resp.status_code != 200:
                raise httpx.HTTPStatusError(f"upstream status {resp.status_code}", request=resp.request, response=resp)
            async for line in resp.aiter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                event = json.loads(line[5:])
                if event.get("usage"):
                    usage["prompt"] = event["usage"].get("prompt_tokens", 0)
                    usage["completion"] = event["usage"].get("completion_tokens", 0)
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text

    async def answer(body: dict[str, Any], messages: list[dict[str, Any]], chat: bool) -> Any:
        model = body.get("model", "")
        usage = {"prompt": 0, "completion": 0}
        t0 = time.perf_counter_ns()

        def part(text: str, done: bool) -> dict[str, Any]:
            out: dict[str, Any] = {"model": model, "created_at": _now(), "done": done}
            if chat:
                out["message"] = {"role": "assistant", "content": text}
            else:
                out["response"] = text
            if done:
                elapsed = time.perf_counter_ns() - t0
                out |= {"done_reason": "stop", "total_duration": elapsed, "load_duration": 0}
                out |= {"prompt_eval_count": usage["prompt"], "prompt_eval_duration": 0}
                out |= {"eval_count": usage["completion"], "eval_duration": elapsed}
            return out

        stream = deltas(openai_request(body, messages), usage)
        if body.get("stream", True) is False:
            try:
                text = "".join([t async for t in stream])
            except httpx.HTTPError as exc:
                return JSONResponse({"error": f"upstream: {type(exc).__name__}"}, status_code=502)
            return JSONResponse(part(text, True))
        try:
            first = await anext(stream, None)  # fail with a status code while that is still possible
        except httpx.HTTPError as exc:
            return JSONResponse({"error": f"upstream: {type(exc).__name__}"}, status_code=502)

        async def ndjson() -> AsyncIterator[bytes]:
            if first is not None:
                yield (json.dumps(part(first, False)) + "\n").encode()
            try:
                async for text in stream:
                    yield (json.dumps(part(text, False)) + "\n").encode()
            except httpx.HTTPError as exc:  # after the first line: Ollama's in-stream error object
                yield (json.dumps({"error": f"upstream: {type(exc).__name__}"}) + "\n").encode()
                return
            yield (json.dumps(part("", True)) + "\n").encode()

        return StreamingResponse(ndjson(), media_type="application/x-ndjson")

    @app.get("/api/version")
    async def version() -> dict[str, str]:
        return {"version": SHIM_VERSION}

    @app.get("/api/tags")
    async def tags() -> Any:
        try:
            resp = await client.get(f"{base}/models", timeout=5)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            return JSONResponse({"error": f"upstream: {type(exc).__name__}"}, status_code=502)
        names = [m["id"] for m in resp.json().get("data", [])]
        details = {"format": "gguf", "family": "gemma3", "parameter_size": "270M", "quantization_level": "Q4_K_M"}
        models = [
            {"name": n, "model": n, "modified_at": _now(), "size": 0, "digest": "", "details": details} for n in names
        ]
        return {"models": models}

    @app.post("/api/chat")
    async def chat(request: Request) -> Any:
        body = await request.json()
        return await answer(body, chat_messages(body), chat=True)

    @app.post("/api/generate")
    async def generate(request: Request) -> Any:
        body = await request.json()
        return await answer(body, generate_messages(body), chat=False)

    return app


def main(argv: list[str] | None = None) -> None:
    """Run the shim with uvicorn."""
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("OLLAMA_SHIM_PORT", "11435")))
    ap.add_argument("--upstream", default=os.environ.get("OLLAMA_SHIM_UPSTREAM", "http://127.0.0.1:8002/v1"))
    args = ap.parse_args(argv)
    uvicorn.run(create_app(args.upstream), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
