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
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration
QUESTION = "Hoeveel liter is de afvalbak van de PurrClean AutoBox 9?"


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


def test_in_flight_cap_and_degradation_end_to_end(api_profile):
    env = {
        "MAX_IN_FLIGHT": "1",
        "DEGRADE_SKIP_EXPANSION_ABOVE": "0",
        "DEGRADE_SKIP_RERANK_ABOVE": "0",
        "RATE_LIMIT_PER_MINUTE": "1000",
        "LLM_TIMEOUT_S": "180",
        "REQUEST_TIMEOUT_S": "400",
    }
    print("profile: MAX_IN_FLIGHT=1, degradation thresholds 0, rate limit 1000/minute")
    stream_id = f"inflight-{uuid.uuid4().hex[:12]}"
    with api_profile("limits-inflight", env) as (base, workdir):
        started, done = threading.Event(), threading.Event()
        events: list[str] = []

        def hold_the_slot() -> None:
            payload = {"input": {"question": QUESTION}}
            with httpx.stream(
                "POST", f"{base}/rag/stream", json=payload, headers={"X-Request-ID": stream_id}, timeout=400
            ) as r:
                for line in r.iter_lines():
                    started.set()
                    events.append(line)
            done.set()

        worker = threading.Thread(target=hold_the_slot, daemon=True)
        worker.start()
        assert started.wait(120), "the stream did not start"
        refused = httpx.post(f"{base}/rag/invoke", json={"input": {"question": QUESTION}}, timeout=30)
        assert done.wait(400), "the stream did not end"
        after = httpx.post(f"{base}/rag/invoke", json={"input": {"question": QUESTION}}, timeout=400)
    assert refused.status_code == 503, refused.text
    assert refused.headers.get("retry-after") and refused.json()["error"]
    assert after.status_code == 200 and after.json()["output"]["sources"], after.text
    assert any(line.startswith("event: end") for line in events)
    degraded = _audit_lines(workdir / "audit.jsonl", {stream_id})[stream_id].get("degraded")
    assert degraded and {"expansion", "rerank"} <= set(degraded), degraded


def _aborted(llm_base: str) -> float:
    """vLLM's count of requests that ended because the client went away."""
    text = httpx.get(llm_base.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total{") and 'finished_reason="abort"' in line
    )


def test_client_disconnect_aborts_the_llm_request(api_profile, vllm_server):
    # A long, fixed-length answer (no stop sequences, EOS ignored) so that the generation is surely still
    # running when the client leaves after the first answer text.
    env = {
        "LLM_MAX_TOKENS": "400",
        "LLM_STOP": "[]",
        "LLM_EXTRA_BODY": '{"ignore_eos": true}',
        "RATE_LIMIT_PER_MINUTE": "1000",
        "LLM_TIMEOUT_S": "180",
        "REQUEST_TIMEOUT_S": "400",
    }
    print("profile: 400-token answers without stop sequences (ignore_eos), to disconnect mid-answer")
    before = _aborted(vllm_server)
    with api_profile("disconnect", env) as (base, _):
        t0 = time.monotonic()
        with httpx.stream("POST", f"{base}/rag/stream", json={"input": {"question": QUESTION}}, timeout=300) as r:
            for line in r.iter_lines():
                if line.startswith("data:") and '"answer"' in line:
                    break  # leave after the first answer text: closes the connection
        left = time.monotonic()
        deadline = left + 15
        while _aborted(vllm_server) <= before and time.monotonic() < deadline:
            time.sleep(0.25)
        aborted_after = time.monotonic() - left
    assert _aborted(vllm_server) > before, "vLLM never saw the request aborted"
    print(
        f"first answer text after {left - t0:.1f} s; vLLM counted the abort {aborted_after:.2f} s after the client left"
    )
