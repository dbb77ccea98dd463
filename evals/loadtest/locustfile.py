"""Locust users of the load test; started by ``python -m evals.loadtest`` (not meant to be run by hand).

Each user asks a random question from the evaluation sets through the streaming endpoint
``/rag/stream`` and writes one JSON line per request (time to first answer token, end-to-end
time, status, request id) to ``LOADTEST_RESULTS``. ``realistic`` users read and wait 10–30 s
between questions; ``stress`` users ask again at once (closed loop).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from locust import HttpUser, between, constant, events, task

SHAPE = os.environ.get("LOADTEST_SHAPE", "stress")
STEP = os.environ.get("LOADTEST_STEP", SHAPE)
TIMEOUT_S = float(os.environ.get("LOADTEST_REQUEST_TIMEOUT_S", "120"))
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

    wait_time = between(10, 30) if SHAPE == "realistic" else constant(0)

    @task
    def ask(self) -> None:
        """One question, streamed to the end."""
        question = random.choice(QUESTIONS)
        row: dict[str, Any] = {"step": STEP, "start": time.time(), "ttft_s": None, "refused": False, "ended": False}
        row.update(status=0, error=None, request_id=None)
        t0 = time.perf_counter()
        try:
            with self.client.post(
                "/rag/stream",
                json={"input": {"question": question}},
                stream=True,
                catch_response=True,
                timeout=TIMEOUT_S,
                name="/rag/stream",
            ) as resp:
                row["status"] = resp.status_code
                row["request_id"] = resp.headers.get("x-request-id")
                if resp.status_code == 200:
                    _read_stream(resp.iter_lines(decode_unicode=True), t0, row)
                    if not row["ended"] and row["error"] is None:
                        row["error"] = "stream ended early"
                else:
                    row["error"] = f"HTTP {resp.status_code}"
                if row["error"]:
                    resp.failure(row["error"])
                else:
                    resp.success()
        except Exception as exc:  # a timeout or a dropped connection is a failed request, not a crash
            row["error"] = type(exc).__name__
        row["total_s"] = round(time.perf_counter() - t0, 4)
        row["ok"] = row["error"] is None
        _results.write(json.dumps(row) + "\n")
