"""OpenAI-compatible API: ``GET /v1/models``, ``POST /v1/chat/completions`` (plain and SSE stream).

Any OpenAI client can talk to the assistant: the answer is the RAG pipeline's filtered answer
(``api.assistant``: guard, retrieval, evidence, the sentence check, output filter), never the raw
backend. Sources travel in an extra top-level ``sources`` field (on the response, and on the last
stream chunk), and are *not* appended to the content, which stays exactly the checked answer.
Only the last user message is answered (no conversation memory: ``/api/chat`` has that). Every response carries
the answer's ``mode`` (``core.outcomes``); ``finish_reason`` is ``content_filter`` when the claim check ended the
model's text. Input rules are in ``api.openai_schemas``. Errors use OpenAI's shape
``{"error": {"message", "type", "param", "code"}}``. A client that disconnects cancels the run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import aclosing
from typing import Annotated, Any, cast

import openai
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from langchain_core.runnables import RunnableConfig
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.assistant import UNAVAILABLE, assistant
from api.openai_schemas import (
    ChatCompletionRequest,
    Prepared,
    RequestRejectedError,
    chunk,
    completion,
    model_card,
    openai_error,
    prepare,
    usage_of,
)
from api.timeouts import RequestTimeoutError
from core import requestctx
from core.settings import Settings, get_settings

logger = logging.getLogger(__name__)

ConfigModifier = Callable[[dict[str, Any], Request], Awaitable[dict[str, Any]]]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DONE = "data: [DONE]\n\n"


def _error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    headers = {"Retry-After": "10"} if status == 503 else None
    return JSONResponse(openai_error(message, type_, code, param), status_code=status, headers=headers)


class OpenAIRoute(APIRoute):
    """Validation errors as OpenAI-style 400s instead of the API's usual 422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler so that invalid bodies get OpenAI's error shape."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
                message = f"invalid request: {first.get('msg', 'malformed body')}" + (f" ({where})" if where else "")
                return _error(400, message, "invalid_request_error", "invalid_request", where)
            except StarletteHTTPException as exc:  # FastAPI could not parse the body (not UTF-8, too deep)
                if exc.status_code != 400:
                    raise
                return _error(400, str(exc.detail), "invalid_request_error", "invalid_body")

        return handle


def _sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _stream(prep: Prepared, config: RunnableConfig, cid: str, created: int, model: str) -> AsyncIterator[str]:
    yield _sse(chunk(cid, created, model, {"role": "assistant", "content": ""}))
    sources: list[Any] = []
    finish, refused, sent_text, mode = "stop", False, False, "abstained"
    try:
        stream = assistant.astream({"question": prep.question, "max_tokens": prep.max_tokens}, config)
        async with aclosing(stream):  # type: ignore[type-var]  # an async generator underneath
            async for part in stream:
                if part.get("error"):
                    yield _sse(openai_error(str(part["error"]), "service_unavailable", "backend_unavailable"))
                    yield DONE
                    return
                if "sources" in part:
                    sources = list(part["sources"])
                if part.get("answer"):
                    sent_text = True
                    yield _sse(chunk(cid, created, model, {"content": part["answer"]}))
                if part.get("blocked"):
                    # The text already sent was checked; the rest is replaced by the refusal.
                    finish, sources = "content_filter", []
                    text = ("\n\n" if sent_text else "") + str(part["refusal"])
                    yield _sse(chunk(cid, created, model, {"content": text}))
                if "refused" in part:
                    refused, mode = bool(part["refused"]), str(part.get("mode", "abstained"))
                    if part.get("cut"):  # the claim check ended the model's text: say so, as OpenAI does
                        finish = "content_filter"
    except Exception:  # after the 200 went out, a clean error chunk is all a client can still get
        logger.exception("openai stream failed")
        yield _sse(openai_error(UNAVAILABLE, "service_unavailable", "internal_error"))
        yield DONE
        return
    last = chunk(cid, created, model, {}, finish)
    last.update(sources=sources, refused=refused, mode=mode)
    usage = usage_of(requestctx.current())
    if usage is not None:
        last["usage"] = usage
    yield _sse(last)
    yield DONE


def make_router(config_modifier: ConfigModifier) -> APIRouter:
    """The ``/v1`` routes; ``config_modifier`` is the server's per-request run config (request id, thread)."""
    router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)

    @router.get("/models")
    async def list_models(settings: SettingsDep) -> dict[str, Any]:
        """The assistant, as the one model of this service."""
        return {"object": "list", "data": [model_card(settings)]}

    @router.get("/models/{model_id}", response_model=None)
    async def get_model(model_id: str, settings: SettingsDep) -> dict[str, Any] | JSONResponse:
        """One model's card, or 404."""
        if model_id != settings.served_model_name:
            return _error(404, f"The model `{model_id}` does not exist", "invalid_request_error", "model_not_found")
        return model_card(settings)

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(
        body: ChatCompletionRequest, request: Request, settings: SettingsDep
    ) -> JSONResponse | StreamingResponse:
        """Answer the last user message with the shop assistant (``stream: true`` for SSE)."""
        if body.model != settings.served_model_name:
            return _error(
                404, f"The model `{body.model}` does not exist", "invalid_request_error", "model_not_found", "model"
            )
        try:
            prep = prepare(body, settings)
        except RequestRejectedError as exc:
            return _error(400, str(exc), "invalid_request_error", "unsupported", exc.param)
        requestctx.annotate(
            api="openai",
            stream=body.stream,
            max_tokens=prep.max_tokens,
            ignored_roles=prep.ignored_roles,
            ignored_params=prep.ignored_params,
        )
        config = cast(RunnableConfig, await config_modifier({}, request))
        cid = f"chatcmpl-{config.get('metadata', {}).get('request_id', 'x')}"
        if body.stream:
            created = int(time.time())
            return StreamingResponse(
                _stream(prep, config, cid, created, body.model),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            out = await assistant.ainvoke({"question": prep.question, "max_tokens": prep.max_tokens}, config)
        except (openai.APIError, RequestTimeoutError) as exc:
            requestctx.annotate(llm_error=type(exc).__name__)
            logger.error("openai completion failed: %s", type(exc).__name__)
            return _error(503, UNAVAILABLE, "service_unavailable", "backend_unavailable")
        extra = {"sources": out.get("sources") or [], "refused": bool(out.get("refused")), "mode": out.get("mode")}
        usage = usage_of(requestctx.current())
        finish = "content_filter" if out.get("cut") else "stop"
        return JSONResponse(completion(cid, body.model, out.get("answer") or "", finish, extra, usage))

    return router
