"""The shop front end's conversation API: a server-sent-events chat stream, threads, feedback.

``POST /api/chat/stream`` answers one message as SSE events: ``thread`` (the server-issued handle,
always first), ``sources``, ``token`` (text the output filter has cleared), ``blocked`` (the filter
stopped the answer: show the refusal instead), ``final`` (answer, sources, refused, language, mode, thread,
message_id) or ``error`` (a clean message; nothing is stored). A client that disconnects cancels the
run, and with it the LLM request. ``GET``/``DELETE /api/threads/{thread}`` read and delete a
conversation; ``POST /api/feedback`` rates one answer. Unknown and foreign handles are all 404.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sse_starlette import EventSourceResponse

from api.assistant import UNAVAILABLE, Assistant
from api.schemas import ChatRequest, ErrorResponse, FeedbackRequest
from core import requestctx
from core.history import HistoryStore
from core.metrics import FEEDBACK
from core.threads import ThreadHandles
from guards.redact import redact

logger = logging.getLogger(__name__)

PING_S = 15
NOT_FOUND = "unknown conversation"
THREAD_ROUTE = "/api/threads/{thread}"  # written to the audit line instead of the path with the handle


@dataclass(frozen=True)
class ChatService:
    """What the chat routes need; built once in the server's lifespan."""

    store: HistoryStore
    handles: ThreadHandles
    graph: Any  # the conversational graph, compiled with the store's checkpointer
    assistant: Assistant


def _service(request: Request) -> ChatService:
    service: ChatService | None = getattr(request.app.state, "chat", None)
    if service is None:
        raise HTTPException(503, "conversations are not available")
    return service


Chat = Annotated[ChatService, Depends(_service)]
router = APIRouter(prefix="/api", tags=["chat"], responses={404: {"model": ErrorResponse}})


def thread_ref(thread_id: str) -> str:
    """A short reference for logs and the audit line: correlates turns, is no handle."""
    return hashlib.sha256(thread_id.encode()).hexdigest()[:16]


async def _owned(service: ChatService, handle: str) -> str:
    thread_id = service.handles.verify(handle)
    if thread_id is None or not await service.store.exists(thread_id):
        raise HTTPException(404, NOT_FOUND)
    return thread_id


def _sse(event: str, data: dict[str, Any]) -> dict[str, str]:
    return {"event": event, "data": json.dumps(data, ensure_ascii=False)}


async def _events(
    service: ChatService, question: str, thread_id: str, handle: str, message_id: str, request_id: str
) -> AsyncIterator[dict[str, str]]:
    yield _sse("thread", {"thread": handle})
    config: dict[str, Any] = {
        "configurable": {"thread_id": thread_id},
        "metadata": {"request_id": request_id, "message_id": message_id},
        "run_name": "shop-assistant-chat",
    }
    text: list[str] = []
    sources: list[Any] = []
    closing: dict[str, Any] = {}
    try:
        async for chunk in service.assistant.astream({"question": question, "turn_id": message_id}, config):  # type: ignore[arg-type]
            if "sources" in chunk:
                sources = list(chunk["sources"])
                yield _sse("sources", {"sources": sources})
            elif "answer" in chunk:
                text.append(chunk["answer"])
                yield _sse("token", {"text": chunk["answer"]})
            elif chunk.get("blocked"):
                text = [chunk["refusal"]]
                yield _sse("blocked", {"refusal": chunk["refusal"]})
            elif "error" in chunk:
                yield _sse("error", {"error": chunk["error"]})
                return
            elif "refused" in chunk:
                closing = dict(chunk)
    except Exception as exc:  # never a broken stream: a clean error event, details only in the log
        logger.error("chat stream failed: %s", type(exc).__name__)
        requestctx.annotate(chat_error=type(exc).__name__)
        yield _sse("error", {"error": UNAVAILABLE})
        return
    refused = bool(closing.get("refused"))
    final = {
        "answer": "".join(text),
        "sources": [] if refused else sources,
        "refused": refused,
        "language": closing.get("language", "nl"),
        "mode": closing.get("mode", "abstained"),
        "thread": handle,
        "message_id": message_id,
    }
    yield _sse("final", final)


@router.post(
    "/chat/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE: thread, sources, token…, final"}},
)
async def chat_stream(body: ChatRequest, request: Request, service: Chat) -> EventSourceResponse:
    """Answer one message of a conversation as server-sent events (omit ``thread`` to start one)."""
    if body.thread is None:
        handle, thread_id = service.handles.issue()
    else:
        handle, thread_id = body.thread, await _owned(service, body.thread)
    await service.store.touch(thread_id)
    message_id = uuid.uuid4().hex
    request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    requestctx.annotate(chat={"thread": thread_ref(thread_id), "message_id": message_id, "new": body.thread is None})
    events = _events(service, body.question, thread_id, handle, message_id, request_id)
    return EventSourceResponse(events, ping=PING_S, headers={"Cache-Control": "no-store"})


@router.get("/threads/{thread}")
async def read_thread(thread: str, service: Chat) -> dict[str, Any]:
    """The conversation's stored (redacted, trimmed) history."""
    requestctx.annotate(route=THREAD_ROUTE)
    thread_id = await _owned(service, thread)
    state = await service.graph.aget_state({"configurable": {"thread_id": thread_id}})
    messages = [
        {k: v for k, v in entry.items() if k in ("role", "content", "id", "sources", "refused")}
        for entry in (state.values or {}).get("history", [])
    ]
    return {"thread": thread, "messages": messages}


@router.delete("/threads/{thread}", status_code=204)
async def delete_thread(thread: str, service: Chat) -> Response:
    """Delete the conversation, its history and its feedback (204; 404 when unknown or not yours)."""
    requestctx.annotate(route=THREAD_ROUTE)
    thread_id = service.handles.verify(thread)
    if thread_id is None or not await service.store.delete(thread_id):
        raise HTTPException(404, NOT_FOUND)
    requestctx.annotate(chat={"thread": thread_ref(thread_id), "deleted": True})
    return Response(status_code=204)


@router.post("/feedback", status_code=201)
async def feedback(body: FeedbackRequest, service: Chat) -> dict[str, str]:
    """Rate one answer of your conversation (thumbs up or down, optional comment, stored redacted)."""
    thread_id = await _owned(service, body.thread)
    state = await service.graph.aget_state({"configurable": {"thread_id": thread_id}})
    answers = {e.get("id") for e in (state.values or {}).get("history", []) if e.get("role") == "assistant"}
    if body.message_id not in answers:
        raise HTTPException(404, "unknown message")
    comment = redact(body.comment) if body.comment else None
    await service.store.add_feedback(thread_id, body.message_id, body.rating, comment)
    FEEDBACK.labels(rating=body.rating).inc()
    requestctx.annotate(feedback={"thread": thread_ref(thread_id), "rating": body.rating})
    return {"message_id": body.message_id, "rating": body.rating}
