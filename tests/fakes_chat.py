"""Helpers for the chat API tests: SSE parsing, one chat turn, the audit log, a slow streaming LLM."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from core.settings import get_settings
from fakes import long_generation

Events = list[tuple[str, dict[str, Any]]]


def parse_sse(body: str) -> Events:
    """(event, data) pairs of a server-sent-events body; comments (pings) are skipped."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def chat(client: TestClient, question: str, thread: str | None = None) -> Events:
    body = {"question": question, **({"thread": thread} if thread else {})}
    with client.stream("POST", "/api/chat/stream", json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return parse_sse("".join(r.iter_text()))


def final(events: Events) -> dict[str, Any]:
    assert events[-1][0] == "final", events
    return events[-1][1]


def audit_lines(wait_for: int = 1) -> list[dict[str, Any]]:
    path = get_settings().audit_log_path
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        if len(lines) >= wait_for:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"fewer than {wait_for} audit lines")


class SlowStreamingModel(GenericFakeChatModel):
    """Streams ``tokens`` words, one every ``delay_s``; records how many it sent and whether it was cancelled.

    First a sentence of the test catalogue that the claim check releases, then words of a sentence that never
    ends: the check neither fails nor stops the generation (``fakes.long_generation``).
    """

    tokens: int = 200
    delay_s: float = 0.05
    log: ClassVar[dict[str, Any]] = {}

    async def _astream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.log.update(sent=0, cancelled=False, finished=False)
        try:
            for text in long_generation(self.tokens):
                await asyncio.sleep(self.delay_s)
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager is not None:
                    await run_manager.on_llm_new_token(text, chunk=chunk)
                self.log["sent"] += 1
                yield chunk
            self.log["finished"] = True
        except (asyncio.CancelledError, GeneratorExit):  # cancelled mid-wait, or closed between tokens
            self.log["cancelled"] = True
            raise
