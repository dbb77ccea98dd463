"""The public runnable behind ``/rag``: the graph, with the output filter on every answer.

``invoke`` returns the graph's filtered output. ``stream`` sends ``{"sources"}`` first (the context's
documents), then ``{"answer": text}`` chunks that a ``StreamGuard`` has cleared (a small window is held
back until the text around it was checked), then ``{"sources"}`` again when the answer cites fewer of
them (``chains.citations``; none for the fallback answer), then ``{"refused", "language"}``. When the filter
blocks mid-stream, the stream sends ``{"blocked": true, "refusal": …}`` instead of more
text, and clients show the refusal in place of the partial answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any, Literal, cast

import openai
from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.utils import AddableDict

from api.schemas import AskRequest, AskResponse
from api.timeouts import RequestTimeoutError, until_deadline, within_deadline
from chains import prompts
from chains.context import grounding_text
from core import requestctx
from core.metrics import TIME_TO_FIRST_TOKEN
from core.resources import get_resources
from core.settings import get_settings
from graph.builder import graph
from graph.context import Context
from guards.output import StreamGuard

UNAVAILABLE = "The assistant is temporarily unavailable, please try again shortly."


def _question(payload: Any) -> str:
    return str(payload["question"] if isinstance(payload, dict) else payload.question)


def _graph_input(payload: Any) -> dict[str, Any]:
    """The graph's input: the question, plus the turn id of a conversation (``/api/chat``)."""
    extra = {"turn_id": str(payload["turn_id"])} if isinstance(payload, dict) and payload.get("turn_id") else {}
    return {"question": _question(payload), **extra}


def _context(payload: Any) -> Context | None:
    """A lower output-token limit from the OpenAI endpoint (``/rag`` callers cannot send one)."""
    limit = payload.get("max_tokens") if isinstance(payload, dict) else None
    return Context(max_tokens=int(limit)) if limit else None


class Assistant(Runnable[dict[str, Any], dict[str, Any]]):
    """Invoke or stream the shop assistant."""

    name = "shop-assistant"

    def __init__(self, compiled: Any = None, *, durability: Literal["sync", "async", "exit"] | None = None) -> None:
        """``compiled``: another compiled graph (the server's conversational one); default: the stateless graph."""
        self.compiled = compiled
        self.durability = durability

    def _graph(self) -> Any:
        return self.compiled if self.compiled is not None else graph

    def _run_kwargs(self, input: Any) -> dict[str, Any]:
        return {"context": _context(input), **({"durability": self.durability} if self.durability else {})}

    def invoke(self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        """Synchronous invoke (notebooks); the server uses ``ainvoke``."""
        return asyncio.run(self.ainvoke(input, config))

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run the graph; its output-filter node has checked the answer."""
        run = self._graph().ainvoke(_graph_input(input), config, **self._run_kwargs(input))
        out = await within_deadline(run, get_settings().request_timeout_s)
        return {k: out.get(k) for k in ("answer", "sources", "refused", "language")}

    def stream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Synchronous stream is not offered: use ``astream``."""
        yield self.invoke(input, config)

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream sources, cleared answer text, then the closing flags."""
        guard = StreamGuard(get_resources().output_filter, cut_runon=get_settings().answer_cut_runon)
        final: dict[str, Any] = {}
        sent_sources: list[Any] | None = None  # the sources event already sent, if any
        streamed = False
        t0 = time.perf_counter()
        try:
            # Closed explicitly (not left to the garbage collector) when this stream is closed: that cancels the
            # graph run and with it the LLM request, right after a client leaves.
            async with aclosing(
                until_deadline(self._run(input, config, guard, final), get_settings().request_timeout_s)
            ) as chunks:
                async for chunk in chunks:
                    if "sources" in chunk:
                        sent_sources = chunk["sources"]
                    if "answer" in chunk:
                        if not streamed:
                            TIME_TO_FIRST_TOKEN.observe(time.perf_counter() - t0)
                        streamed = True
                    yield chunk
        except (openai.APIError, RequestTimeoutError) as exc:
            # A clean error chunk instead of a broken stream; the audit line records it.
            requestctx.annotate(llm_error=type(exc).__name__)
            yield AddableDict(error=UNAVAILABLE)
            yield AddableDict(refused=False, language=final.get("language", "nl"))
            return
        async for chunk in self._close(final, guard, sent_sources=sent_sources, streamed=streamed):
            yield chunk

    async def _run(
        self, input: dict[str, Any], config: RunnableConfig | None, guard: StreamGuard, final: dict[str, Any]
    ) -> AsyncIterator[AddableDict]:
        sent_sources = streamed = False
        run = self._graph().astream(
            _graph_input(input), config, stream_mode=["messages", "updates"], **self._run_kwargs(input)
        )
        async with aclosing(run):  # closing this stream closes the graph run at once, which cancels its LLM call
            async for mode, item in run:
                if mode == "messages":
                    chunk, meta = cast(tuple[Any, dict[str, Any]], item)
                    if meta.get("langgraph_node") != "generate" or not isinstance(chunk, AIMessageChunk):
                        continue
                    if not sent_sources:
                        guard.context = grounding_text(final.get("chunks") or [])
                        yield AddableDict(sources=final.get("sources", []))
                        sent_sources = True
                    text = guard.feed(str(chunk.content) if streamed or guard.text else str(chunk.content).lstrip())
                    if text:
                        streamed = True
                        yield AddableDict(answer=text)
                else:
                    for update in cast(dict[str, Any], item).values():
                        if update:
                            final.update(update)

    async def _close(
        self, final: dict[str, Any], guard: StreamGuard, *, sent_sources: list[Any] | None, streamed: bool
    ) -> AsyncIterator[AddableDict]:
        sources = final.get("sources", [])
        if sent_sources is None:
            yield AddableDict(sources=sources)
        if final.get("fallback"):  # generate replaced the model's answer (empty, or nothing from the catalogue)
            if streamed:  # clients show the fixed answer instead of the text already shown, as after a block
                yield AddableDict(blocked=True, refusal=final.get("answer", ""))
            else:
                yield AddableDict(answer=final.get("answer", ""))
        elif streamed or guard.text:
            note = final.get("feed_note") if final.get("answer") else ""  # generate appended it to its answer
            rest = (guard.feed(f" {note}") if note else "") + guard.finish()
            if rest:
                yield AddableDict(answer=rest)
        elif final.get("answer"):
            yield AddableDict(answer=final["answer"])
        if sent_sources is not None and sources != sent_sources:
            # After the text: the documents the answer rests on (chains.citations); none for the fallback answer.
            yield AddableDict(sources=sources)
        if guard.blocked:
            refusal = prompts.REFUSAL_EN if final.get("language") == "en" else prompts.REFUSAL_NL
            requestctx.annotate(output_filter={"decision": "block", "reasons": guard.reasons, "stream": True})
            yield AddableDict(blocked=True, refusal=refusal)
        refused = bool(final.get("refused", False)) or guard.blocked
        yield AddableDict(refused=refused, language=final.get("language", "nl"))


assistant = Assistant().with_types(
    input_type=AskRequest,  # type: ignore[arg-type]  # LangServe validates with the pydantic model
    output_type=AskResponse,  # type: ignore[arg-type]
)
