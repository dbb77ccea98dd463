"""The public runnable: runs the graph and streams the answer as addable chunks.

``invoke`` aggregates the chunks (``AddableDict`` concatenates strings), ``stream``
sends sources first, then answer tokens, then the closing flags.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.utils import AddableDict

from api.schemas import AskRequest, AskResponse
from graph.builder import graph


async def stream_answer(payload: dict[str, Any], config: RunnableConfig) -> AsyncIterator[AddableDict]:
    """Run the graph; yield ``{"sources"}``, then ``{"answer": token}``…, then ``{"refused", "language"}``."""
    question = payload["question"] if isinstance(payload, dict) else payload.question
    streamed = False
    sent_sources = False
    final: dict[str, Any] = {}
    async for mode, item in graph.astream({"question": question}, config, stream_mode=["messages", "updates"]):
        if mode == "messages":
            chunk, meta = cast(tuple[Any, dict[str, Any]], item)
            if meta.get("langgraph_node") == "generate" and isinstance(chunk, AIMessageChunk) and chunk.content:
                if not sent_sources and "sources" in final:
                    yield AddableDict(sources=final["sources"])
                    sent_sources = True
                text = chunk.content if streamed else str(chunk.content).lstrip()
                if text:
                    streamed = True
                    yield AddableDict(answer=text)
        else:
            for update in cast(dict[str, Any], item).values():
                if update:
                    final.update(update)
    if not sent_sources:
        yield AddableDict(sources=final.get("sources", []))
    if not streamed:
        yield AddableDict(answer=final.get("answer", ""))
    yield AddableDict(refused=bool(final.get("refused", False)), language=final.get("language", "nl"))


assistant = RunnableLambda(stream_answer, name="shop-assistant").with_types(
    input_type=AskRequest,  # type: ignore[arg-type]  # LangServe validates with the pydantic model
    output_type=AskResponse,  # type: ignore[arg-type]
)
