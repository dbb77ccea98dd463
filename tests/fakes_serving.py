"""Fakes for the serving tests: LLMs that record, sleep or fail, and the app on a real uvicorn thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import uvicorn
from fastapi import FastAPI
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from fakes import long_generation


class RecordingLLM(GenericFakeChatModel):
    """The scripted fake LLM that also records every prompt and the call's keyword arguments."""

    calls: list[dict[str, Any]] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        self.calls.append({"messages": messages, "kwargs": kw})
        return super()._generate(messages, stop, run_manager, **kw)

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        self.calls.append({"messages": messages, "kwargs": kw})
        return super()._stream(messages, stop, run_manager, **kw)


def recording_llm(*answers: str) -> RecordingLLM:
    """A recording LLM that replies with ``answers`` in order."""
    return RecordingLLM(messages=iter([AIMessage(a) for a in answers]))


class SlowLLM(GenericFakeChatModel):
    """Streams ``words`` words, one every ``delay`` seconds; records progress and cancellation (thread-safe).

    First a sentence of the test catalogue that the claim check releases, then words of a sentence that never
    ends: the check neither fails nor stops the generation (``fakes.long_generation``).
    """

    delay: float = 0.1
    words: int = 50
    sent: int = 0
    cancelled: threading.Event = Field(default_factory=threading.Event)
    finished: threading.Event = Field(default_factory=threading.Event)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kw: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        try:
            for i, word in enumerate(long_generation(self.words)):
                await asyncio.sleep(self.delay)
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                self.sent = i + 1
                yield chunk
            self.finished.set()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        try:
            await asyncio.sleep(self.delay * self.words)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.finished.set()
        return ChatResult(generations=[ChatGeneration(message=AIMessage("te laat"))])


def slow_llm(delay: float, words: int = 50) -> SlowLLM:
    """A slow streaming LLM."""
    return SlowLLM(messages=iter([]), delay=delay, words=words)


def _down() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))


class DownLLM(GenericFakeChatModel):
    """An LLM whose server cannot be reached."""

    async def _agenerate(self, *a: Any, **k: Any) -> ChatResult:
        raise _down()

    async def _astream(self, *a: Any, **k: Any) -> AsyncIterator[ChatGenerationChunk]:
        raise _down()
        yield  # pragma: no cover


def down_llm() -> DownLLM:
    """An unreachable LLM."""
    return DownLLM(messages=iter([]))


def redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Whether something listens on the Redis port (the integration tests' skip-or-fail check)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on a free 127.0.0.1 port in a background thread; yield its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def audit_lines(tmp_path: Path, route: str | None = None, expect: int = 0) -> list[dict[str, object]]:
    """The audit lines (of ``route``); waits up to 2 s for ``expect`` of them: a stream's line is written
    just after its last byte went out, so it may land a moment after the client has read everything."""
    path = tmp_path / "audit" / "audit.jsonl"
    deadline = time.monotonic() + 2
    while True:
        lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        lines = [x for x in lines if route is None or x["route"] == route]
        if len(lines) >= expect or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


@contextmanager
def standin_server(*args: str) -> Iterator[str]:
    """The stand-in LLM server (``evals.standin_llm``) on a free loopback port; yields its ``/v1`` base URL.

    ``args`` are its extra command-line options (e.g. ``--first-token-ms 10``).
    """
    import subprocess
    import sys

    port = free_port()
    cmd = [sys.executable, "-m", "evals.standin_llm", "--port", str(port), *args]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(base + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"the stand-in LLM did not start: {(proc.communicate()[0] or '')[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        stop_process(proc)


def stop_process(proc: Any, timeout_s: float = 10) -> None:
    """Terminate ``proc`` (a ``subprocess.Popen``); kill it when it has not exited after ``timeout_s``."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
