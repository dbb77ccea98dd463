"""Load-test smoke runs: the real API (real e5, real Chroma) against the stand-in LLM, through every door.

One run takes all three doors (``/rag/stream``, ``/api/chat/stream`` with SQLite, ``/v1/chat/completions``
through the ``openai`` client) for 12 s each; a second, shorter one holds conversations in PostgreSQL
(skipped when 127.0.0.1:5432 is not there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def run_loadtest(out: Path, chroma: Path, e5_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "evals.loadtest", "--target", "standin", "--shape", "stress", *flags]
    cmd += ["--answer-tokens", "32", "--chroma-path", str(chroma), "--out", str(out)]
    env = {**os.environ, "EMBEDDING_MODEL": str(e5_dir)}
    run = subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True, timeout=420)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def test_loadtest_smoke_run_against_standin(indexed_chroma, e5_dir, tmp_path):
    out = tmp_path / "run"
    run = run_loadtest(out, indexed_chroma, e5_dir, "--door", "all", "--users", "3", "--duration", "12")
    assert "per-IP rate limits raised" in run.stdout
    steps = {s["name"]: s for s in json.loads((out / "summary.json").read_text())}
    assert list(steps) == ["stress-3", "chat-stress-3", "v1-stress-3"]
    for step in steps.values():
        assert step["requests"] > 0 and step["ok"] == step["requests"], step["errors"]
        assert step["audited"] == step["ok"]
        assert {"guard", "retrieve", "generate"} <= set(step["nodes_ms"])
        assert step["timers"]["guard_queue_ms"] and step["timers"]["guard_model_ms"]
        assert step["cpu_s"]["api"] > 0 and step["cpu_s"]["llm"] > 0 and step["cpu_s"]["loadgen"] > 0
    chat = steps["chat-stress-3"]
    assert chat["turns"]["1"]["ok"] > 0 and chat["turns"]["2"]["ok"] > 0  # follow-ups on the same thread
    assert chat["timers"]["checkpoint_ms"]["n"] == chat["ok"] and chat["rewrite_ms"]
    assert steps["stress-3"]["timers"]["checkpoint_ms"] is None  # /rag/stream keeps no history
    v1 = [json.loads(x) for x in (out / "results-v1-stress-3.jsonl").read_text().splitlines()]
    assert {r["stream"] for r in v1} == {True, False}
    assert all(r["ttft_s"] is not None for r in v1 if r["stream"])
    report = (out / "report.md").read_text()
    assert "| stress-3 | 3 |" in report and "| chat-stress-3 | 3 |" in report and "| v1-stress-3 | 3 |" in report
    assert "| 100.0 % |" in report and "(conversations stored in sqlite)" in report
    assert "| step | API | LLM server | load generator | API CPU ms per answer | API cores |" in report
    assert "| step | guard classifier | guard queue | guard model | checkpointer |" in report
    assert "| chat-stress-3 | 2 |" in report  # the chat turns table
    assert (out / "conversations.sqlite").exists()
    assert (out / "report.png").stat().st_size > 10_000


def test_loadtest_chat_with_postgres_checkpointer(indexed_chroma, e5_dir, tmp_path):
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(DATABASE_URL, connect_timeout=3).close()
    except psycopg.Error:
        pytest.skip(f"no PostgreSQL at {DATABASE_URL}")
    out = tmp_path / "run"
    flags = ("--door", "chat", "--checkpointer", "postgres", "--database-url", DATABASE_URL)
    run_loadtest(out, indexed_chroma, e5_dir, *flags, "--users", "2", "--duration", "8")
    (step,) = json.loads((out / "summary.json").read_text())
    assert step["requests"] > 0 and step["ok"] == step["requests"], step["errors"]
    assert step["turns"]["2"]["ok"] > 0 and step["timers"]["checkpoint_ms"]["n"] == step["ok"]
    assert "(conversations stored in postgres)" in (out / "report.md").read_text()
    assert not (out / "conversations.sqlite").exists()


def test_unreachable_postgres_is_a_clear_error(tmp_path):
    cmd = [sys.executable, "-m", "evals.loadtest", "--door", "chat", "--checkpointer", "postgres"]
    cmd += ["--database-url", "postgresql://postgres@127.0.0.1:1/test", "--out", str(tmp_path / "run")]
    run = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=60)
    assert run.returncode != 0
    assert "--checkpointer postgres: cannot reach postgresql://postgres@127.0.0.1:1/test" in run.stderr
    assert not (tmp_path / "run").exists()
