"""Sending the cases to the API (invoke, stream, raw) and collecting judged results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from evals.security.cases import CONCURRENCY, DEFAULT_BUDGET_S, REQUEST_TIMEOUT_S, Case, log

if TYPE_CHECKING:
    from evals.security.judge import Judge


@dataclass(kw_only=True)
class Response:
    """What came back for one request."""

    status: int = 0
    content_type: str = ""
    body: str = ""
    output: dict[str, Any] | None = None
    answer: str = ""
    sources: list[Any] = field(default_factory=list)
    blocked: bool = False
    error: str = ""
    latency_s: float = 0.0


def sse_events(body: str) -> list[tuple[str, Any]]:
    """(event, decoded data) pairs of a server-sent-events body."""
    out: list[tuple[str, Any]] = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        event, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data and data[0]:
            try:
                out.append((event, json.loads("\n".join(data))))
            except ValueError:
                out.append((event, "\n".join(data)))
    return out


def reassemble_stream(body: str) -> tuple[dict[str, Any], bool]:
    """The output a client shows for a ``/rag/stream`` body, and whether a ``blocked`` event came.

    Answer chunks are concatenated; after ``{"blocked": true, "refusal": …}`` the refusal
    replaces whatever text was shown.
    """
    out: dict[str, Any] = {"answer": "", "sources": []}
    blocked = False
    for event, data in sse_events(body):
        if event != "data" or not isinstance(data, dict):
            continue
        if data.get("error"):
            out["error"] = str(data["error"])
            continue
        if data.get("blocked"):
            blocked = True
            out["answer"] = str(data.get("refusal") or "")
            continue
        if "sources" in data:
            out["sources"] = data["sources"] or []
        if "answer" in data and not blocked:
            out["answer"] += str(data["answer"])
        for key in ("refused", "language"):
            if key in data:
                out[key] = data[key]
    return out, blocked


async def send(client: httpx.AsyncClient, base: str, case: Case, request_id: str) -> Response:
    """Send ``case`` with ``request_id`` on a fresh connection; never raises.

    No keep-alive (a server may close a connection after an error) and no retry: a transport
    error or a stream cut short is reported as it happened.
    """
    t0 = time.perf_counter()
    resp = await _send_once(client, base, case, request_id)
    resp.latency_s = round(time.perf_counter() - t0, 3)
    return resp


async def _send_once(client: httpx.AsyncClient, base: str, case: Case, request_id: str) -> Response:
    headers = {"X-Request-ID": request_id, "Connection": "close", **case.headers}
    resp = Response()
    try:
        if case.route == "raw":
            r = await client.request(case.method, base + case.path, content=case.content, headers=headers)
            resp.status, resp.body = r.status_code, r.text
            resp.content_type = r.headers.get("content-type", "")
        elif case.route == "stream":
            payload = {"input": {"question": case.text}}
            async with client.stream("POST", base + "/rag/stream", json=payload, headers=headers) as r:
                raw = b"".join([chunk async for chunk in r.aiter_bytes()])
            resp.status, resp.body = r.status_code, raw.decode("utf-8", "replace")
            resp.content_type = r.headers.get("content-type", "")
            if r.status_code == 200:
                resp.output, resp.blocked = reassemble_stream(resp.body)
        else:
            r = await client.post(base + "/rag/invoke", json={"input": {"question": case.text}}, headers=headers)
            resp.status, resp.body = r.status_code, r.text
            resp.content_type = r.headers.get("content-type", "")
            if r.status_code == 200:
                with contextlib.suppress(ValueError):
                    data = r.json()
                    if isinstance(data, dict) and isinstance(data.get("output"), dict):
                        resp.output = data["output"]
                        resp.blocked = bool(resp.output.get("blocked"))
                        if resp.blocked and resp.output.get("refusal"):
                            resp.output = {**resp.output, "answer": resp.output["refusal"]}
    except httpx.HTTPError as exc:
        resp.error = f"{type(exc).__name__}: {exc}"[:300]
    if resp.output is not None:
        resp.answer = str(resp.output.get("answer") or "")
        sources = resp.output.get("sources")
        resp.sources = sources if isinstance(sources, list) else []
    return resp


@dataclass(kw_only=True)
class Result:
    """One case, its response and verdict (what goes into the report)."""

    id: str
    category: str
    route: str
    request_id: str
    status: int
    outcome: str
    failed: bool
    reasons: list[str]
    leak: list[str]
    latency_s: float
    answer: str = ""
    sources: list[str] = field(default_factory=list)
    blocked: bool = False
    question: str = ""


def not_sent(case: Case, why: str) -> Result:
    """The result of a case that was never sent (over the time budget, interrupted run)."""
    return Result(
        id=case.id,
        category=case.category,
        route=case.route,
        request_id="",
        status=0,
        outcome="skipped",
        failed=True,
        reasons=[why],
        leak=[],
        latency_s=0.0,
        question=case.text[:300],
    )


def _progress(done: int, total: int, t0: float) -> str:
    elapsed = time.monotonic() - t0
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("nan")
    eta_s = f"{eta / 60:.1f} min" if eta == eta else "?"
    return f"{done}/{total} done, {elapsed:.0f} s elapsed, {rate:.2f} req/s, ETA {eta_s}"


async def run_cases(
    base: str,
    cases: list[Case],
    judge: Judge,
    *,
    concurrency: int = CONCURRENCY,
    budget_s: float = DEFAULT_BUDGET_S,
    timeout_s: float = REQUEST_TIMEOUT_S,
    run_tag: str | None = None,
    seed: int = 7,
    results: dict[str, Result] | None = None,
) -> list[Result]:
    """Send and judge every case, at most ``concurrency`` at a time; start none after ``budget_s``.

    ``results`` (case id → result) is filled as responses arrive, so a caller keeps them if interrupted.
    """
    tag = run_tag or secrets.token_hex(4)
    ids = {c.id: f"sec-{tag}-{i:04d}" for i, c in enumerate(cases)}
    order = list(cases)
    random.Random(seed).shuffle(order)
    results = {} if results is None else results
    sem = asyncio.Semaphore(min(concurrency, 4))
    t0 = time.monotonic()
    done = 0
    last_print = 0.0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    timeout = httpx.Timeout(timeout_s, connect=10.0)

    async def one(case: Case, client: httpx.AsyncClient) -> None:
        nonlocal done, last_print
        async with sem:
            if time.monotonic() - t0 > budget_s:
                results[case.id] = not_sent(case, "time budget exhausted")
            else:
                resp = await send(client, base, case, ids[case.id])
                verdict = judge.judge(case, resp)
                results[case.id] = Result(
                    id=case.id,
                    category=case.category,
                    route=case.route,
                    request_id=ids[case.id],
                    status=resp.status,
                    outcome=verdict.outcome,
                    failed=verdict.failed,
                    reasons=verdict.reasons,
                    leak=verdict.leak,
                    latency_s=resp.latency_s,
                    answer=(resp.answer or resp.body)[:600],
                    sources=[str(s.get("id")) for s in resp.sources if isinstance(s, dict)],
                    blocked=resp.blocked,
                    question=case.text[:300],
                )
        done += 1
        now = time.monotonic()
        if now - last_print >= 15 or done == len(order):
            last_print = now
            log(_progress(done, len(order), t0))

    log(f"sending {len(order)} requests, concurrency {min(concurrency, 4)}, time budget {budget_s:.0f} s")
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(one(c, client) for c in order))
    return [results[c.id] for c in cases]
