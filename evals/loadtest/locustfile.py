"""Locust users of the load test; started by ``python -m evals.loadtest`` (not meant to be run by hand).

Each user asks random questions from the evaluation sets through one door and writes one JSON line
per request (time to first answer token, end-to-end time, status, request id) to ``LOADTEST_RESULTS``:
``Asker`` streams ``/rag/stream``; ``ChatUser`` holds two-turn conversations on ``/api/chat/stream``
(a question, then a follow-up with the thread handle, which the API rewrites and stores);
``OpenAIUser`` calls ``/v1/chat/completions`` with the official ``openai`` client, every other request
streamed. ``realistic`` users read and wait 10–30 s between requests; ``stress`` users ask again at
once (closed loop).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import openai
from locust import HttpUser, User, between, constant, events, task

SHAPE = os.environ.get("LOADTEST_SHAPE", "stress")
STEP = os.environ.get("LOADTEST_STEP", SHAPE)
TIMEOUT_S = float(os.environ.get("LOADTEST_REQUEST_TIMEOUT_S", "120"))
MODEL = os.environ.get("LOADTEST_MODEL", "kattenhuis-assistant")
FOLLOW_UPS = ("En hoeveel kost die?", "En is die ook in het zwart te krijgen?", "Hoe snel wordt die geleverd?")
WAIT = between(10, 30) if SHAPE == "realistic" else constant(0)
QUESTIONS = sorted(
    {
        json.loads(line)["question"]
        for path in os.environ.get("LOADTEST_QUESTIONS", "").split(os.pathsep)
        if path
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
)
_results = open(os.environ.get("LOADTEST_RESULTS", os.devnull), "a", encoding="utf-8", buffering=1)  # noqa: SIM115


@events.test_start.add_listener
def _loopback_only(environment: Any, **_: Any) -> None:
    """Refuse to load anything but this machine's loopback interface."""
    host = urlparse(environment.host or "").hostname
    if host != "127.0.0.1":
        raise SystemExit(f"the load test only targets 127.0.0.1, not {host!r}")
    if len(QUESTIONS) < 50:
        raise SystemExit(f"need at least 50 distinct questions, got {len(QUESTIONS)} (LOADTEST_QUESTIONS)")


def _read_stream(lines: Any, t0: float, row: dict[str, Any]) -> None:
    """Parse LangServe's server-sent events: ``event: data`` chunks, ``event: error``, ``event: end``."""
    event = ""
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "error":
            row["error"] = "stream error event"
        elif line.startswith("data:") and event == "data":
            chunk = json.loads(line[5:].strip() or "{}")
            if not isinstance(chunk, dict):
                continue
            if chunk.get("answer") and row["ttft_s"] is None:
                row["ttft_s"] = round(time.perf_counter() - t0, 4)
            if chunk.get("error"):
                row["error"] = "answer error chunk"
            row["refused"] = bool(chunk.get("refused", row["refused"]))
        if event == "end":
            row["ended"] = True


class Asker(HttpUser):
    """A shopper asking questions through the streaming endpoint."""

    wait_time = WAIT

    @task
    def ask(self) -> None:
        """One question, streamed to the end."""
        row = _new_row("rag")
        t0 = time.perf_counter()
        body = {"input": {"question": random.choice(QUESTIONS)}}
        _post_stream(self.client, "/rag/stream", body, row, t0, _read_stream)
        _write(row, t0)


def _new_row(door: str) -> dict[str, Any]:
    row: dict[str, Any] = {"step": STEP, "door": door, "start": time.time(), "ttft_s": None, "refused": False}
    row.update(ended=False, status=0, error=None, request_id=None)
    return row


def _write(row: dict[str, Any], t0: float) -> None:
    row["total_s"] = round(time.perf_counter() - t0, 4)
    row["ok"] = row["error"] is None
    _results.write(json.dumps(row) + "\n")


def _post_stream(
    client: Any, path: str, body: dict[str, Any], row: dict[str, Any], t0: float, read: Any, name: str | None = None
) -> Any:
    """POST ``body`` to a streaming ``path``, read the events with ``read(lines, t0, row)``; record status and errors.

    Returns what ``read`` returns (``None`` when the request failed). A timeout or a dropped connection is a failed
    request in ``row``, not a crash.
    """
    got = None
    try:
        with client.post(
            path, json=body, stream=True, catch_response=True, timeout=TIMEOUT_S, name=name or path
        ) as resp:
            row["status"] = resp.status_code
            row["request_id"] = resp.headers.get("x-request-id")
            if resp.status_code == 200:
                got = read(resp.iter_lines(decode_unicode=True), t0, row)
                if not row["ended"] and row["error"] is None:
                    row["error"] = "stream ended early"
            else:
                row["error"] = f"HTTP {resp.status_code}"
            if row["error"]:
                resp.failure(row["error"])
            else:
                resp.success()
    except Exception as exc:
        row["error"] = type(exc).__name__
    return got


def _read_chat(lines: Any, t0: float, row: dict[str, Any]) -> str | None:
    """Parse ``/api/chat/stream``'s events (thread, sources, token, blocked, final, error); return the handle."""
    event, handle = "", None
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = json.loads(line[5:].strip() or "{}")
            if event == "thread":
                handle = data.get("thread")
            elif event in ("token", "blocked") and row["ttft_s"] is None:
                row["ttft_s"] = round(time.perf_counter() - t0, 4)
            elif event == "error":
                row["error"] = "stream error event"
            elif event == "final":
                row["refused"], row["ended"] = bool(data.get("refused")), True
    return handle


class ChatUser(HttpUser):
    """A shopper in a two-turn conversation: a question, then a follow-up on the same thread."""

    wait_time = WAIT
    thread: str | None = None

    @task
    def turn(self) -> None:
        """The next turn: a new question without a thread, else a follow-up with its handle."""
        first = self.thread is None
        body: dict[str, Any] = {"question": random.choice(QUESTIONS if first else FOLLOW_UPS)}
        if not first:
            body["thread"] = self.thread
        row = _new_row("chat") | {"turn": 1 if first else 2}
        t0 = time.perf_counter()
        handle = _post_stream(self.client, "/api/chat/stream", body, row, t0, _read_chat, name="/api/chat")
        self.thread = handle if first and row["error"] is None else None
        _write(row, t0)


class OpenAIUser(User):
    """A client of the OpenAI-compatible endpoint (the official ``openai`` package), every other call streamed."""

    wait_time = WAIT
    calls = 0

    def on_start(self) -> None:
        """One client (and connection pool) per user; no retries, so every failure is counted."""
        self.api = openai.OpenAI(base_url=f"{self.host}/v1", api_key="loadtest", max_retries=0, timeout=TIMEOUT_S)

    @task
    def complete(self) -> None:
        """One chat completion, streamed on every other call."""
        self.calls += 1
        stream = self.calls % 2 == 0
        row = _new_row("v1") | {"stream": stream}
        messages: Any = [{"role": "user", "content": random.choice(QUESTIONS)}]
        t0 = time.perf_counter()
        exc: Exception | None = None
        try:
            create = self.api.chat.completions.with_raw_response.create
            if stream:
                streamed = create(model=MODEL, messages=messages, stream=True)
                row["status"], row["request_id"] = streamed.status_code, streamed.headers.get("x-request-id")
                for part in streamed.parse():
                    choice = part.choices[0] if part.choices else None
                    if choice and choice.delta.content and row["ttft_s"] is None:
                        row["ttft_s"] = round(time.perf_counter() - t0, 4)
                    if choice and choice.finish_reason:
                        row["ended"] = True
                if not row["ended"]:
                    row["error"] = "stream ended early"
            else:
                plain = create(model=MODEL, messages=messages, stream=False)
                row["status"], row["request_id"] = plain.status_code, plain.headers.get("x-request-id")
                row["ended"] = bool(plain.parse().choices)
        except openai.APIStatusError as err:
            exc, row["status"], row["error"] = err, err.status_code, f"HTTP {err.status_code}"
        except Exception as err:  # a timeout or a dropped connection is a failed request, not a crash
            exc, row["error"] = err, type(err).__name__
        _write(row, t0)
        self.environment.events.request.fire(
            request_type="POST",
            name="/v1/chat/completions" + (" (stream)" if stream else ""),
            response_time=row["total_s"] * 1000,
            response_length=0,
            exception=exc or (RuntimeError(row["error"]) if row["error"] else None),
            context={},
        )
