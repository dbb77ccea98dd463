"""Run the load test: start the API (and the stand-in LLM), run locust headless per step, write the report.

Steps: ``realistic`` (users ask, read, wait 10–30 s, ask again) and ``stress`` (closed loop,
one step per user count), for each door (``--door``): ``rag`` (``/rag/stream``), ``chat``
(``/api/chat/stream``, two-turn conversations) and ``v1`` (``/v1/chat/completions`` through the
``openai`` client, half streamed). Every step is capped in time; the API is started on a free
127.0.0.1 port with raised per-IP rate limits (all load comes from 127.0.0.1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from core.settings import ROOT, get_settings
from evals.loadtest import report
from evals.loadtest.cpu import CpuClock
from evals.loadtest.stack import check_postgres, start_api, start_standin, stop, warm_up

QUESTION_FILES = sorted((ROOT / "evals" / "data").glob("questions_*.jsonl"))
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# In front of the CPU vLLM the prefill of ~2,000 prompt tokens per answer is the bottleneck (~45 answers/min):
# degrade early there, down to the short context, instead of letting vLLM's queue pass the request timeout.
CPU_DEGRADE = "4,8,8"
# The locust user class of each door (evals/loadtest/locustfile.py).
DOORS = {"rag": "Asker", "chat": "ChatUser", "v1": "OpenAIUser"}


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB."""
    return psutil.Process(pid).memory_info().rss / 2**20


class RssSampler:
    """Samples a process's RSS every ``interval_s`` in a thread, for the duration of a ``with`` block."""

    def __init__(self, pid: int, interval_s: float = 2.0) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.samples.append(rss_mib(self.pid))
            except psutil.Error:
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_step(
    args: argparse.Namespace,
    base: str,
    out: Path,
    shape: str,
    users: int,
    api_pid: int | None = None,
    door: str = "rag",
    llm_pid: int | None = None,
) -> dict[str, Any]:
    """One locust run, capped at ``duration`` plus the stop timeout; returns its manifest entry."""
    duration = args.duration or (300 if shape == "realistic" else 180)
    name = f"{shape}-{users}" if door == "rag" else f"{door}-{shape}-{users}"
    env = {
        **os.environ,
        "LOADTEST_SHAPE": shape,
        "LOADTEST_STEP": name,
        "LOADTEST_RESULTS": str(out / f"results-{name}.jsonl"),
        "LOADTEST_QUESTIONS": os.pathsep.join(str(p) for p in QUESTION_FILES),
        "LOADTEST_REQUEST_TIMEOUT_S": str(args.request_timeout_s),
        "LOADTEST_MODEL": get_settings().served_model_name,
    }
    spawn_rate = max(1, users // 10) if shape == "realistic" else users
    stop_timeout = int(min(args.request_timeout_s, 60))
    cmd = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        base,
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "--run-time",
        f"{duration}s",
        "--stop-timeout",
        str(stop_timeout),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
        "--csv",
        str(out / name),
        DOORS[door],
    ]
    print(f"step {name}: {users} users, {duration} s ({shape})", flush=True)
    started = time.time()
    cpu = CpuClock(api_pid, llm_pid)
    sampler = RssSampler(api_pid) if api_pid else None
    with (out / f"locust-{name}.log").open("wb") as fh, sampler or contextlib.nullcontext():
        try:
            subprocess.run(
                cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=duration + stop_timeout + 60
            )
        except subprocess.TimeoutExpired:
            print(f"step {name}: locust did not finish in time and was stopped", flush=True)
    entry: dict[str, Any] = {"name": name, "shape": shape, "users": users, "started": started, "ended": time.time()}
    entry |= {"door": door, "cpu_s": cpu.read()}
    if sampler and sampler.samples:
        entry["api_rss_mib_max"] = round(max(sampler.samples), 1)
    return entry


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="python -m evals.loadtest", description=__doc__)
    p.add_argument("--target", choices=["standin", "vllm"], default="standin", help="the LLM server behind the API")
    p.add_argument("--door", choices=[*DOORS, "all"], default="rag", help="the endpoint under load (default rag)")
    p.add_argument("--shape", choices=["realistic", "stress", "all"], default="all")
    p.add_argument("--duration", type=int, help="seconds per step (default: realistic 300, stress 180)")
    p.add_argument("--users", help="comma list: stress steps; realistic uses the largest (default 10,50,100)")
    p.add_argument("--llm-url", default="http://127.0.0.1:8001/v1", help="--target vllm: the running vLLM server")
    p.add_argument("--llm-model", help="served model name (default: LLM_MODEL for vllm, 'standin' for the stand-in)")
    p.add_argument("--standin-first-token-ms", type=float, default=50.0)
    p.add_argument("--standin-tokens-per-s", type=float, default=100.0)
    p.add_argument("--answer-tokens", type=int, default=64, help="fixed answer length (LLM_MAX_TOKENS)")
    p.add_argument(
        "--degrade",
        help="in-flight thresholds 'expansion,rerank,context' for graceful degradation "
        "(default: the service's settings for the stand-in, 4,8,8 for --target vllm: the CPU backend)",
    )
    p.add_argument("--request-timeout-s", type=float, default=120.0)
    p.add_argument("--start-timeout-s", type=float, default=240.0)
    p.add_argument("--chroma-path", type=Path, help="index to serve (default: the service's CHROMA_PATH)")
    p.add_argument(
        "--checkpointer",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="the API's conversation store (sqlite: a fresh file in the run folder; postgres: --database-url)",
    )
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--out", type=Path, help="result folder (default: var/loadtest/<time>-<target>)")
    args = p.parse_args(argv)
    args.user_steps = sorted({int(u) for u in (args.users or "10,50,100").split(",") if u.strip()})
    if not args.user_steps or min(args.user_steps) < 1:
        p.error("--users needs positive integers")
    if args.duration is not None and args.duration < 5:
        p.error("--duration must be at least 5 s")
    if args.target == "vllm" and httpx.URL(args.llm_url).host != "127.0.0.1":
        p.error("the load test only runs against 127.0.0.1")
    if args.checkpointer == "postgres" and httpx.URL(args.database_url).host not in ("127.0.0.1", "localhost"):
        p.error("--database-url: the load test only uses a database on this machine")
    args.doors = tuple(DOORS) if args.door == "all" else (args.door,)
    if args.degrade is None and args.target == "vllm":
        args.degrade = CPU_DEGRADE
    if args.degrade is not None:
        try:
            levels = [int(x) for x in args.degrade.split(",")]
        except ValueError:
            levels = []
        if len(levels) != 3 or levels != sorted(levels) or min(levels) < 0:
            p.error("--degrade needs three ascending non-negative integers, e.g. 4,8,8")
    args.llm_model = args.llm_model or (get_settings().llm_model if args.target == "vllm" else "standin")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the steps and print the report."""
    args = parse_args(argv)
    if args.checkpointer == "postgres":
        check_postgres(args.database_url)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (args.out or ROOT / "var" / "loadtest" / f"{stamp}-{args.target}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    standin = api = None
    rss_idle = 0.0
    steps: list[dict[str, Any]] = []
    try:
        if args.target == "standin":
            standin, llm_url = start_standin(args, out)
            llm = f"stand-in (benchmark fixture): {args.standin_first_token_ms:g} ms first token, "
            llm += f"{args.standin_tokens_per_s:g} tokens/s per stream"
        else:
            llm_url, llm = args.llm_url, f"vLLM at {args.llm_url} ({args.llm_model})"
            httpx.get(llm_url + "/models", timeout=10).raise_for_status()
        api, base = start_api(args, llm_url, out)
        rss_idle = rss_mib(api.pid)
        warm_up(base, args.request_timeout_s, args.doors, get_settings().served_model_name)
        pids = {"api_pid": api.pid, "llm_pid": standin.pid if standin else None}
        for door in args.doors:
            if args.shape in ("realistic", "all"):
                steps.append(run_step(args, base, out, "realistic", max(args.user_steps), door=door, **pids))
            if args.shape in ("stress", "all"):
                steps += [run_step(args, base, out, "stress", users, door=door, **pids) for users in args.user_steps]
    finally:
        stop(api)
        stop(standin)
    manifest = {
        "target": args.target,
        "started": stamp,
        "llm": llm,
        "answer_tokens": args.answer_tokens,
        "degrade_thresholds": args.degrade or "service defaults",
        "doors": list(args.doors),
        "checkpointer": args.checkpointer if "chat" in args.doors else None,
        "api_rss_mib_idle": round(rss_idle, 1) if api is not None else None,
        "questions": len({json.loads(x)["question"] for f in QUESTION_FILES for x in f.open() if x.strip()}),
        "steps": steps,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    md, png = report.build(out)
    print(md.read_text(encoding="utf-8"))
    print(f"report: {md}\nplot:   {png}\nraw:    {out}")
    return 0
