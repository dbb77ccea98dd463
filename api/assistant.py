"""The public runnable behind ``/rag``: the graph, whose ``check`` and ``output_filter`` nodes decide every answer.

``invoke`` returns the graph's output (answer, sources, refused, language, mode). ``stream`` sends
``{"sources"}`` first (the evidence's documents, when the model starts), then ``{"answer": text}`` chunks: whole
sentences that ``guards.stream.SentenceStream`` released (markup, claims, leaks; the same checks as the graph's
``check`` node), then ``{"sources"}`` again when the checked answer rests on fewer documents, then
``{"refused", "language", "mode", "cut"}`` (``cut``: a sentence failed the check and ended the generated text).
When nothing the model said passed, the extractive or abstaining answer comes as one chunk. When the output filter
replaces an answer already under way, the stream sends ``{"blocked": true, "refusal": …}`` and clients show the
refusal in place of the partial answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal, cast

import openai
from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.utils import AddableDict

from api.schemas import AskRequest, AskResponse
from api.timeouts import RequestTimeoutError, until_deadline, within_deadline
from core import requestctx
from core.metrics import TIME_TO_FIRST_TOKEN
from core.settings import get_settings
from graph.builder import graph
from graph.context import Context
from graph.trust import evidence_lines, make_stream, notes, sources_of
from guards.stream import SentenceStream

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
        result = {k: out.get(k) for k in ("answer", "sources", "refused", "language")}
        mode = out.get("mode") or ("refused" if out.get("refused") else "abstained")
        return {**result, "mode": mode, "cut": bool(out.get("cut"))}

    def stream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Synchronous stream is not offered: use ``astream``."""
        yield self.invoke(input, config)

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream sources, checked answer text, then the closing flags."""
        final: dict[str, Any] = {}
        run = _Run(context=_context(input) or Context())
        t0 = time.perf_counter()
        try:
            # Closed explicitly (not left to the garbage collector) when this stream is closed: that cancels the
            # graph run and with it the LLM request, right after a client leaves.
            async with aclosing(
                until_deadline(self._run(input, config, run, final), get_settings().request_timeout_s)
            ) as chunks:
                async for chunk in chunks:
                    if "sources" in chunk:
                        run.sent_sources = chunk["sources"]
                    if "answer" in chunk:
                        if not run.streamed:
                            TIME_TO_FIRST_TOKEN.observe(time.perf_counter() - t0)
                        run.streamed = True
                    yield chunk
        except (openai.APIError, RequestTimeoutError) as exc:
            # A clean error chunk instead of a broken stream; the audit line records it.
            requestctx.annotate(llm_error=type(exc).__name__)
            yield AddableDict(error=UNAVAILABLE)
            yield AddableDict(refused=False, language=final.get("language", "nl"))
            return
        async for chunk in _close(final, run):
            yield chunk

    async def _run(
        self, input: dict[str, Any], config: RunnableConfig | None, run: _Run, final: dict[str, Any]
    ) -> AsyncIterator[AddableDict]:
        graph_run = self._graph().astream(
            _graph_input(input), config, stream_mode=["messages", "updates"], **self._run_kwargs(input)
        )
        async with aclosing(graph_run):  # closing this stream closes the graph run at once, which cancels its LLM call
            async for mode, item in graph_run:
                if mode == "messages":
                    chunk, meta = cast(tuple[Any, dict[str, Any]], item)
                    if meta.get("langgraph_node") != "generate" or not isinstance(chunk, AIMessageChunk):
                        continue
                    if run.checked is None:  # the evidence is in the state by now: the same checks as the graph's
                        run.checked = make_stream(final, run.context)
                        # the evidence's documents now; the checked answer's own follow after the text
                        yield AddableDict(sources=sources_of(evidence_lines(final)))
                    text = run.checked.feed(str(chunk.content))
                    if text:
                        yield AddableDict(answer=text)
                else:
                    for update in cast(dict[str, Any], item).values():
                        if update:
                            final.update(update)


@dataclass
class _Run:
    """What one stream has sent so far."""

    context: Context
    checked: SentenceStream | None = None  # the sentence checker, once the model speaks
    sent_sources: list[Any] | None = None
    streamed: bool = False


async def _close(final: dict[str, Any], run: _Run) -> AsyncIterator[AddableDict]:
    sources = final.get("sources", [])
    mode = final.get("mode")
    if run.sent_sources is None:
        yield AddableDict(sources=sources)
    if final.get("refused") and run.streamed:  # the output filter replaced the answer: show the refusal instead
        yield AddableDict(blocked=True, refusal=final.get("answer", ""))
    elif run.checked is not None and mode == "generated":
        rest = run.checked.finish(truncated=bool(final.get("truncated")))
        note = notes(final)
        tail = " ".join(t for t in (rest.strip(), note) if t)
        if tail:
            yield AddableDict(answer=f" {tail}" if run.streamed else tail)
    elif run.streamed:  # cannot happen while the graph and the stream share one checker; never show unchecked text
        yield AddableDict(blocked=True, refusal=final.get("answer", ""))
    elif final.get("answer"):
        yield AddableDict(answer=final["answer"])
    if run.sent_sources is not None and sources != run.sent_sources:
        yield AddableDict(sources=sources)  # after the text: the documents of the lines that support it
    refused = bool(final.get("refused", False))
    yield AddableDict(
        refused=refused, language=final.get("language", "nl"), mode=mode or "abstained", cut=bool(final.get("cut"))
    )


assistant = Assistant().with_types(
    input_type=AskRequest,  # type: ignore[arg-type]  # LangServe validates with the pydantic model
    output_type=AskResponse,  # type: ignore[arg-type]
)
