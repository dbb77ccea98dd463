"""The load test's breakdown: CPU per process, guard queue vs model, checkpointer time, chat turns, the timers."""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np

from core import batching, requestctx
from evals.loadtest import apiserver, breakdown, report
from evals.loadtest.cpu import CpuClock, process_cpu_s
from graph import gates

STEP = {
    "name": "chat-stress-2",
    "shape": "stress",
    "users": 2,
    "started": 0.0,
    "ended": 10.0,
    "door": "chat",
    "cpu_s": {"api": 6.0, "llm": None, "loadgen": 1.5},
}


def _rows_and_audit() -> tuple[list[dict], dict[str, dict]]:
    rows, audit = [], {}
    for i in range(6):
        turn = 1 + i % 2
        rid = f"r{i}"
        rows.append(
            {"step": STEP["name"], "start": float(i), "total_s": 0.5 * turn, "ttft_s": 0.1 * turn, "ok": True}
            | {"turn": turn, "request_id": rid, "door": "chat"}
        )
        timers = {"checkpoint_ms": 2.0 + i, "checkpoint_calls": 2, "guard_queue_ms": 5.0, "guard_model_ms": 10.0 + i}
        audit[rid] = {"request_id": rid, "route": "/api/chat/stream", "nodes_ms": {"guard": 20.0}, "loadtest": timers}
        if turn == 2:
            audit[rid]["rewrite"] = {"status": "ok", "ms": 100.0 + i}
    return rows, audit


def test_chat_step_breakdown_figures_and_tables():
    rows, audit = _rows_and_audit()
    s = report.summarise(STEP, rows, audit)
    assert s["door"] == "chat" and s["audited"] == 6
    assert s["timers"]["checkpoint_ms"]["p50"] == float(np.percentile([2, 3, 4, 5, 6, 7], 50))
    assert s["timers"]["guard_model_ms"]["n"] == 6 and s["timers"]["guard_classify_ms"] is None
    assert s["checkpoint_calls_mean"] == 2.0
    assert s["rewrite_ms"]["p50"] == 103.0  # turns 2 only: 101, 103, 105
    assert s["turns"]["1"]["ok"] == 3 and s["turns"]["2"]["total"]["p50"] == 1.0
    md = report.markdown([s], {"target": "standin", "doors": ["chat"], "checkpointer": "postgres"})
    assert "endpoint `/api/chat/stream` (conversations stored in postgres)" in md
    cpu_row = next(x for x in md.splitlines() if x.startswith("| chat-stress-2 | 6.0 |"))
    assert cpu_row == "| chat-stress-2 | 6.0 | – | 1.5 | 1000 | 0.60 |"  # 6 s over 6 answers, 6 s over 10 s
    assert "| step | guard classifier | guard queue | guard model | checkpointer | checkpointer calls | rewrite |" in md
    assert "| chat-stress-2 | – | 5.0 / 5.0 | 12.5 / 14.8 | 4.5 / 6.8 | 2.0 | 103.0 / 104.8 |" in md
    assert "| chat-stress-2 | 2 | 3 | 0.20 / 0.20 | 1.00 / 1.00 |" in md


def test_old_runs_without_timers_render_without_the_new_tables():
    step = {"name": "stress-5", "shape": "stress", "users": 5, "started": 0.0, "ended": 60.0}
    s = report.summarise(step, [], {})
    assert s["door"] == "rag" and s["cpu_s"] == {} and s["turns"] == {}
    assert breakdown.markdown([s]) == []
    assert "endpoint `/rag/stream`;" in report.markdown([s], {"target": "standin"})


def test_audit_join_covers_every_door():
    records = [{"request_id": d, "route": r} for d, r in report.ROUTES.items()] + [{"request_id": "x", "route": "/"}]
    assert sorted(report.audit_by_request(records)) == ["chat", "rag", "v1"]


def test_cpu_clock_reads_this_process():
    clock = CpuClock(os.getpid(), None)
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    used = clock.read()
    assert used["llm"] is None and used["loadgen"] == 0.0
    assert used["api"] is not None and 0.1 <= used["api"] < 5
    assert process_cpu_s(None) is None and process_cpu_s(2**22 + 12345) is None


def test_timers_land_in_the_request_audit_record():
    record: dict = {}
    token = requestctx.begin(record)
    try:
        apiserver.add_ms("checkpoint_ms", 1.5)
        apiserver.add_ms("checkpoint_ms", 2.0)
        apiserver.add_ms("guard_queue_ms", 3.0, how="max")
        apiserver.add_ms("guard_queue_ms", 1.0, how="max")
    finally:
        requestctx.end(token)
    apiserver.add_ms("checkpoint_ms", 9.0)  # no request: nothing to write to
    assert record["loadtest"] == {"checkpoint_ms": 3.5, "guard_queue_ms": 3.0}


def test_guard_split_on_a_real_batcher(monkeypatch):
    for name in ("_call", "_run_batch", "run"):
        monkeypatch.setattr(batching.MicroBatcher, name, getattr(batching.MicroBatcher, name))
    monkeypatch.setattr(gates, "classify", gates.classify)

    def slow_model(items: list[str]) -> list[int]:
        time.sleep(0.05)
        return [len(x) for x in items]

    async def fake_classify(batcher: batching.MicroBatcher, text: str) -> int:
        return await batcher.run(text)

    monkeypatch.setattr(gates, "classify", fake_classify)
    apiserver.patch_guard()
    batcher = batching.MicroBatcher(slow_model, name="test", max_batch=8, max_wait_ms=30)

    async def main() -> tuple[dict, dict]:
        guard_record: dict = {}
        other_record: dict = {}
        token = requestctx.begin(guard_record)
        guard = asyncio.create_task(gates.classify(batcher, "vraag"))  # the guard's call
        requestctx.end(token)
        token = requestctx.begin(other_record)
        other = asyncio.create_task(batcher.run("andere"))  # e.g. retrieval: not the guard
        requestctx.end(token)
        assert await guard == 5 and await other == 6
        return guard_record, other_record

    guard_record, other_record = asyncio.run(main())
    timers = guard_record["loadtest"]
    assert 20 <= timers["guard_queue_ms"] < 1000  # the batching window
    assert 45 <= timers["guard_model_ms"] < 1000  # the model's sleep
    assert timers["guard_classify_ms"] >= timers["guard_queue_ms"] + timers["guard_model_ms"] - 1
    assert "loadtest" not in other_record
    assert not batcher.__dict__.get("_loadtest_stamps")  # nothing left behind
