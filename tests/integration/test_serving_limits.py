"""The API's limits end to end, each on its own real API process (real vLLM, e5, Chroma).

* The **default** rate limit (10 requests/minute per client IP): the 11th request gets a JSON 429 with
  ``Retry-After``, and every request, rejected ones included, has its audit line.
* The **in-flight cap** (``MAX_IN_FLIGHT=1`` here) answers 503 + ``Retry-After`` while a stream holds the
  only slot, and lets requests in again once it ends; with the degradation thresholds at 0, the one
  answered request skips expansion and reranking and its audit line says so.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from core.outcomes import ANSWERED, OUTCOMES

pytestmark = pytest.mark.integration
QUESTION = "Hoeveel liter is de afvalbak van de PurrClean AutoBox 9?"
FIRST_TOKEN_EVENT = 'data: {"sources"'  # the stream's sources event is sent with the first generated token


def _audit_lines(path: Path, want: set[str], wait_s: float = 10.0) -> dict[str, dict]:
    """Audit lines by request id, waiting up to ``wait_s`` for the ones in ``want`` (written after the response)."""
    deadline = time.monotonic() + wait_s
    while True:
        lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        found = {r["request_id"]: r for r in lines if r.get("request_id")}
        if want <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_default_rate_limit_end_to_end(api_profile):
    ids = [f"ratelimit-{uuid.uuid4().hex[:12]}" for _ in range(11)]
    # RATE_LIMIT_PER_MINUTE / _PER_HOUR and the backoff are left at their defaults.
    with api_profile("limits-default", {}) as (base, workdir), httpx.Client(base_url=base, timeout=30) as client:
        # An invalid body is refused before the LLM (422) but still counts against the client's budget.
        statuses = [client.post("/rag/invoke", json={"input": {}}, headers={"X-Request-ID": rid}) for rid in ids]
    assert [r.status_code for r in statuses[:10]] == [422] * 10
    last = statuses[10]
    assert last.status_code == 429, last.text
    assert int(last.headers["retry-after"]) >= 1 and last.json()["error"]
    audit = _audit_lines(workdir / "audit.jsonl", set(ids))
    assert set(ids) <= set(audit), set(ids) - set(audit)
    assert audit[ids[10]]["status"] == 429


class _HeldStream:
    """A ``/rag/stream`` request read on a thread of its own, to hold the API's only in-flight slot."""

    def __init__(self, base: str, request_id: str) -> None:
        self.request_id = request_id
        self.events: list[str] = []
        self.generating, self.done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._read, args=(base,), daemon=True)
        self._thread.start()

    def _read(self, base: str) -> None:
        payload = {"input": {"question": QUESTION}}
        headers = {"X-Request-ID": self.request_id}
        try:
            with httpx.stream("POST", f"{base}/rag/stream", json=payload, headers=headers, timeout=400) as r:
                for line in r.iter_lines():
                    self.events.append(line)
                    if line.startswith(FIRST_TOKEN_EVENT):
                        self.generating.set()
        finally:
            self.done.set()

    def wait_until_generating(self, timeout_s: float) -> bool:
        """True once the answer is being generated; False if the stream ended (or stalled) before that."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.done.is_set():
            if self.generating.wait(0.05):
                return True
        return self.generating.is_set()


def _span(line: dict) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(line["time"])
    return start, start + timedelta(milliseconds=line["latency_ms"])


def test_in_flight_cap_and_degradation_end_to_end(api_profile):
    env = {
        "MAX_IN_FLIGHT": "1",
        "DEGRADE_SKIP_EXPANSION_ABOVE": "0",
        "DEGRADE_SKIP_RERANK_ABOVE": "0",
        "DEGRADE_SHORT_CONTEXT_ABOVE": "0",
        "RERANKER_PROVIDER": "lexical",  # off by default: switched on so that there is a rerank step to skip
        # The held stream must outlast the second request: a long answer (up to 400 tokens; the stream's check ends
        # it at the first failing sentence, about 7 s on a 2-core CPU, 2026-12-02); the overlap is checked below.
        "LLM_MAX_TOKENS": "400",
        "LLM_STOP": "[]",
        "LLM_EXTRA_BODY": '{"ignore_eos": true}',
        "ANSWER_CUT_RUNON": "false",
        "RATE_LIMIT_PER_MINUTE": "1000",
        "LLM_TIMEOUT_S": "180",
        "REQUEST_TIMEOUT_S": "400",
    }
    print("profile: MAX_IN_FLIGHT=1, degradation thresholds 0, rate limit 1000/minute")
    with api_profile("limits-inflight", env) as (base, workdir):
        # The premise, checked rather than assumed: the second request reaches the API while the held stream is
        # still open. A stream that ended before its answer began (CI, 2026-11-27: one 200 where a 503 was due,
        # cause not recorded) is tried again, at most twice, and each such try is reported as a warning.
        for attempt in range(1, 4):
            held = _HeldStream(base, f"inflight-{uuid.uuid4().hex[:12]}")
            generating = held.wait_until_generating(120)
            second_id = f"second-{uuid.uuid4().hex[:12]}"
            second = httpx.post(
                f"{base}/rag/invoke",
                json={"input": {"question": QUESTION}},
                headers={"X-Request-ID": second_id},
                timeout=400,
            )
            assert held.done.wait(400), "the held stream did not end"
            audit = _audit_lines(workdir / "audit.jsonl", {held.request_id, second_id})
            stream_line, second_line = audit[held.request_id], audit[second_id]
            overlapped = _span(second_line)[0] < _span(stream_line)[1]
            if generating and overlapped:
                break
            warnings.warn(
                f"try {attempt}: the held stream was not open when the second request came (generating={generating}, "
                f"stream audit: status {stream_line.get('status')}, guard {stream_line.get('guard')}, "
                f"llm_error {stream_line.get('llm_error')}, {stream_line.get('latency_ms')} ms; "
                f"events {held.events[:12]})",
                stacklevel=1,
            )
        else:
            pytest.fail(f"the held stream never overlapped the second request; last events: {held.events[:20]}")
        after = httpx.post(f"{base}/rag/invoke", json={"input": {"question": QUESTION}}, timeout=400)
    assert second.status_code == 503, (second.text[:500], held.events[:12])
    assert second.headers.get("retry-after") and second.json()["error"]
    assert second_line["blocked_by"] == "overload"
    out = after.json()["output"] if after.status_code == 200 else {}
    # Served again once the slot is free, through the whole pipeline: a checked answer with its mode. 400 forced
    # tokens with the run-on cut off may copy prompt text, which the check cuts (quoted evidence or the abstention)
    # or the output filter refuses (CI, 2026-11-27); only an answer stating catalogue facts cites sources.
    assert out.get("answer") and out.get("mode") in OUTCOMES, after.text
    assert bool(out["sources"]) == (out["mode"] in ANSWERED), out
    assert any(line.startswith("event: end") for line in held.events)
    degraded = stream_line.get("degraded")
    assert degraded and {"expansion", "rerank", "context"} <= set(degraded), degraded


def _vllm(llm_base: str) -> dict[str, float]:
    """vLLM's own counters: requests running, generated tokens, and requests finished by reason."""
    out: dict[str, float] = {}
    for line in httpx.get(llm_base.removesuffix("/v1") + "/metrics", timeout=10).text.splitlines():
        value = line.rsplit(" ", 1)[-1]
        if line.startswith("vllm:num_requests_running{"):
            out["running"] = out.get("running", 0.0) + float(value)
        elif line.startswith("vllm:generation_tokens_total{"):
            out["generated"] = out.get("generated", 0.0) + float(value)
        elif line.startswith("vllm:request_success_total{"):
            reason = line.split('finished_reason="')[1].split('"')[0]
            out[f"finished_{reason}"] = out.get(f"finished_{reason}", 0.0) + float(value)
    return out


def _read_to_the_end(base: str, llm_base: str) -> float:
    """Tokens vLLM generates for the question when the client reads the whole stream."""
    before = _vllm(llm_base)
    with httpx.stream("POST", f"{base}/rag/stream", json={"input": {"question": QUESTION}}, timeout=300) as r:
        for _ in r.iter_lines():
            pass
    deadline = time.monotonic() + 10
    while _vllm(llm_base)["running"] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # the engine's counters catch up
    return _vllm(llm_base)["generated"] - before["generated"]


def _leave_while_generating(base: str, llm_base: str, timeout_s: float = 120) -> tuple[dict, dict] | None:
    """Open a stream and leave it as soon as vLLM is generating its answer; (before, at leaving), or None if missed.

    The moment to leave is read from vLLM itself (a request running and a token generated), not from the stream:
    the first event reaches the client only once the API has written it, and on a loaded 2-core CI machine that
    came after the whole 100-token answer (2026-12-02), so "leave at the first event" could leave too late.
    Leaving the ``with`` block closes the connection without reading the body.
    """
    before = _vllm(llm_base)
    with httpx.stream("POST", f"{base}/rag/stream", json={"input": {"question": QUESTION}}, timeout=300):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = _vllm(llm_base)
            finished = sum(v for k, v in now.items() if k.startswith("finished_"))
            if finished > sum(v for k, v in before.items() if k.startswith("finished_")):
                return None  # the answer ended before the client could leave: nothing to cut short
            if now["running"] >= 1 and now["generated"] > before["generated"]:
                return before, now  # closes the connection mid-answer
            time.sleep(0.02)
    return None


def test_client_disconnect_aborts_the_llm_request(api_profile, vllm_server):
    # A long answer (up to 400 tokens, no stop sequences, EOS ignored) so that the generation is surely still running
    # when the client leaves. The stream's check (guards.stream) ends the generation itself at the first sentence
    # that fails or repeats: 54 tokens read to the end (2026-12-02, 2-core CPU), 100 in a CI run, not 400. So the
    # premise is measured, not assumed: the same request read to the end first, and the disconnected one must stop
    # well short of it. The client leaves when vLLM reports the answer generating (``_leave_while_generating``).
    tokens = 400
    env = {
        "LLM_MAX_TOKENS": str(tokens),
        "LLM_STOP": "[]",
        "LLM_EXTRA_BODY": '{"ignore_eos": true}',
        "ANSWER_CUT_RUNON": "false",  # no cut at run-on markup before the check's own stop
        # Without the claims stage the checked sentences flow out as they are generated, as every answer's did
        # before issue #15: with it, the first unsupported sentence ends this rambling answer after ~54 tokens.
        "CHECK_CLAIMS": "false",
        "RATE_LIMIT_PER_MINUTE": "1000",
        "LLM_TIMEOUT_S": "180",
        "REQUEST_TIMEOUT_S": "400",
    }
    print(f"profile: {tokens}-token answers without stop sequences (ignore_eos), to disconnect mid-answer")
    with api_profile("disconnect", env) as (base, _):
        full = _read_to_the_end(base, vllm_server)
        for attempt in range(1, 4):  # the premise (still generating when the client left) checked, not assumed
            left_at = _leave_while_generating(base, vllm_server)
            if left_at is not None:
                break
            warnings.warn(f"try {attempt}: the answer ended before the client could leave", stacklevel=1)
            time.sleep(2)
        else:
            pytest.fail("in three tries the answer always ended before the client could leave")
        before, during = left_at
        left = time.monotonic()
        while _vllm(vllm_server)["running"] > 0 and time.monotonic() < left + 10:
            time.sleep(0.1)
        stopped_after = time.monotonic() - left
        time.sleep(12)  # the rest of the answer would have added tokens meanwhile
        after = _vllm(vllm_server)
    before_leaving = during["generated"] - before["generated"]
    after_leaving = after["generated"] - during["generated"]
    print(
        f"read to the end: {full:.0f} tokens; disconnected: vLLM stopped generating {stopped_after:.2f} s after the "
        f"client left, {before_leaving:.0f} tokens before the client left and {after_leaving:.0f} after"
    )
    # The premise: left alone, this answer goes on long after the first token (temperature 0: the same tokens).
    assert full >= 20, f"read to the end, the answer took only {full:.0f} tokens: nothing to cut short"
    assert during["running"] >= 1, during  # the answer was being generated when the client left
    assert after["running"] == 0 and stopped_after < 10
    assert after.get("finished_length", 0) == before.get("finished_length", 0), "the answer ran to its end"
    remaining = full - before_leaving
    assert after_leaving < remaining / 2, f"{after_leaving} of the {remaining} remaining tokens generated after leaving"
