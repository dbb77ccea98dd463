"""Processes of a load test: the stand-in LLM, the API under test (load-test profile), warm-up."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from core.settings import ROOT

RATE_PER_MINUTE, RATE_PER_HOUR = 1_000_000, 10_000_000


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes], what: str) -> None:
    """Poll ``url`` until it answers 200; fail when ``proc`` exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited during start-up (exit code {proc.returncode})")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{what} not ready after {timeout_s:.0f} s ({url})")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate a process this script started (its own process group), then kill it if needed."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group with output to ``log``."""
    with log.open("wb") as fh:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def start_standin(args: argparse.Namespace, out: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The stand-in LLM server (benchmark fixture) on a free port."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "evals.standin_llm",
        "--port",
        str(port),
        "--served-model-name",
        args.llm_model,
        "--first-token-ms",
        str(args.standin_first_token_ms),
        "--tokens-per-s",
        str(args.standin_tokens_per_s),
    ]
    proc = spawn(cmd, dict(os.environ), out / "standin.log")
    url = f"http://127.0.0.1:{port}/v1"
    wait_http(url + "/models", 60, proc, "stand-in LLM")
    return proc, url


def start_api(args: argparse.Namespace, llm_url: str, out: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The API under test: fixed answer length, its own audit log, raised per-IP rate limits."""
    port = free_port()
    env = {
        **os.environ,
        "LLM_BASE_URL": llm_url,
        "LLM_MODEL": args.llm_model,
        "LLM_MAX_TOKENS": str(args.answer_tokens),
        "LLM_STOP": "[]",  # a fixed answer length: no stop sequences ...
        "LLM_EXTRA_BODY": json.dumps({"ignore_eos": True} if args.target == "vllm" else {}),  # ... and no early EOS
        "ANSWER_CUT_RUNON": "false",  # ... and no cut at run-on markup
        "LLM_TIMEOUT_S": str(args.request_timeout_s),
        "AUDIT_LOG_PATH": str(out / "audit.jsonl"),
        "EMERGENCY_STOP_FILE": str(out / "EMERGENCY_STOP"),
        "RATE_LIMIT_PER_MINUTE": str(RATE_PER_MINUTE),
        "RATE_LIMIT_PER_HOUR": str(RATE_PER_HOUR),
        "BACKOFF_STRIKES": str(RATE_PER_HOUR),  # one IP for every simulated user: no shared backoff
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }
    if args.degrade:
        keys = ("DEGRADE_SKIP_EXPANSION_ABOVE", "DEGRADE_SKIP_RERANK_ABOVE", "DEGRADE_SHORT_CONTEXT_ABOVE")
        env.update(zip(keys, args.degrade.split(","), strict=True))
        print(f"load-test profile: degradation thresholds (in flight) expansion,rerank,context = {args.degrade}")
    if args.chroma_path:
        env["CHROMA_PATH"] = str(args.chroma_path)
    env.pop("DATABASE_URL", None)
    if args.checkpointer == "postgres":
        env["DATABASE_URL"] = args.database_url
    else:
        env["HISTORY_DB_PATH"] = str(out / "conversations.sqlite")
    print(
        f"load-test profile: per-IP rate limits raised to {RATE_PER_MINUTE}/minute and {RATE_PER_HOUR}/hour "
        "and the guard-strike backoff switched off, for this API process only (all load comes from 127.0.0.1); "
        "answer length fixed at "
        f"{args.answer_tokens} tokens (no stop sequences); no answer cache",
        flush=True,
    )
    # server:app under uvicorn, with the load test's checkpointer and guard timers (evals.loadtest.apiserver)
    cmd = [sys.executable, "-m", "evals.loadtest.apiserver", "--host", "127.0.0.1", "--port", str(port)]
    proc = spawn(cmd, env, out / "api.log")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/ready", args.start_timeout_s, proc, "API")
    return proc, base


def check_postgres(url: str) -> None:
    """Fail with a clear message when the PostgreSQL checkpointer's database cannot be reached."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise SystemExit(f"--checkpointer postgres: cannot reach {url}: {exc}".strip()) from None


def _drain(method: str, url: str, body: dict[str, Any], timeout_s: float) -> None:
    with httpx.stream(method, url, json=body, timeout=timeout_s) as r:
        r.raise_for_status()
        for _ in r.iter_lines():
            pass


def warm_up(base: str, timeout_s: float, doors: tuple[str, ...] = ("rag",), model: str = "") -> None:
    """A few requests through every door before measuring (first calls pay one-off costs)."""
    for q in ("Wat kost verzending?", "Hoe lang heb ik om te retourneren?"):
        _drain("POST", base + "/rag/stream", {"input": {"question": q}}, timeout_s)
        if "chat" in doors:
            _drain("POST", base + "/api/chat/stream", {"question": q}, timeout_s)
        if "v1" in doors:
            body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": q}]}
            _drain("POST", base + "/v1/chat/completions", body, timeout_s)
