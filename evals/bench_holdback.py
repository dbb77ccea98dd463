"""What the streaming hold-back window costs the first token: ``python -m evals.bench_holdback``.

The stream guard (``guards.output.StreamGuard``) releases text only once the ``HOLDBACK_CHARS``
characters after it have been generated and checked, so the first answer text leaves the server
later than the LLM's first token. This runs questions through the real graph (real embedder, index
and LLM server from the settings) exactly as ``api.assistant`` streams them, and records per
question: the time of the LLM's first token, the time the guard released the first text, and the
filter's own CPU time per token. Needs an ingested index (``make ingest``) and the LLM server
(``make llm-start``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

from langchain_core.messages import AIMessageChunk

from core.resources import get_resources
from graph.builder import graph
from guards.output import HOLDBACK_CHARS, StreamGuard

QUESTIONS = Path(__file__).resolve().parent / "data" / "questions_dev.jsonl"


async def one(question: str, holdback: int) -> dict[str, Any]:
    """Stream one question; times in ms from the request start."""
    guard = StreamGuard(get_resources().output_filter, holdback=holdback)
    t0 = time.perf_counter()
    first_token = first_release = None
    tokens = 0
    filter_s = 0.0
    async for mode, item in graph.astream({"question": question}, stream_mode=["messages", "updates"]):
        if mode != "messages":
            continue
        chunk, meta = cast(tuple[Any, dict[str, Any]], item)
        if meta.get("langgraph_node") != "generate" or not isinstance(chunk, AIMessageChunk):
            continue
        now = time.perf_counter()
        tokens += 1
        first_token = first_token if first_token is not None else now
        f0 = time.perf_counter()
        released = guard.feed(str(chunk.content))
        filter_s += time.perf_counter() - f0
        if released and first_release is None:
            first_release = time.perf_counter()
    end = time.perf_counter()
    f0 = time.perf_counter()
    rest = guard.finish()
    filter_s += time.perf_counter() - f0
    if first_release is None and rest:
        first_release = time.perf_counter()
    ms = lambda t: None if t is None else (t - t0) * 1000.0  # noqa: E731
    return {
        "first_token_ms": ms(first_token),
        "first_release_ms": ms(first_release),
        "end_ms": ms(end),
        "tokens": tokens,
        "chars": len(guard.text),
        "filter_us_per_token": filter_s * 1e6 / max(tokens, 1),
        "held_to_end": first_release is not None and first_release >= end,
    }


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def run(n: int, holdback: int) -> list[dict[str, Any]]:
    """Questions one at a time, after one warm-up question."""
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [r["question"] for r in rows][:n]
    await one(questions[0], holdback)
    return [await one(q, holdback) for q in questions]


def main(argv: list[str] | None = None) -> int:
    """Print the first-token cost of the hold-back window."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=15, help="questions (from evals/data/questions_dev.jsonl)")
    ap.add_argument("--holdback", type=int, default=HOLDBACK_CHARS, help="characters held back")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    get_resources()
    rows = asyncio.run(run(args.n, args.holdback))
    timed = [r for r in rows if r["first_token_ms"] is not None and r["first_release_ms"] is not None]
    delays = [r["first_release_ms"] - r["first_token_ms"] for r in timed]
    per_token = [(r["end_ms"] - r["first_token_ms"]) / max(r["tokens"] - 1, 1) for r in timed if r["tokens"] > 1]
    print(f"{len(rows)} questions, hold-back {args.holdback} characters, load average {os.getloadavg()[0]:.2f}")
    for label, key in (
        ("LLM first token (ms from request)", "first_token_ms"),
        ("first text released", "first_release_ms"),
    ):
        vals = [r[key] for r in timed]
        print(f"  {label:<36} p50 {_pct(vals, 0.5):.0f}  p95 {_pct(vals, 0.95):.0f}")
    print(
        f"  hold-back cost to the first token    p50 {_pct(delays, 0.5):.0f} ms  p95 {_pct(delays, 0.95):.0f} ms"
        f"  (mean {statistics.mean(delays):.0f} ms)"
    )
    print(f"  decode time per token                p50 {_pct(per_token, 0.5):.1f} ms")
    print(
        f"  answers shorter than the window (released only at the end): "
        f"{sum(r['held_to_end'] for r in rows)}/{len(rows)}"
    )
    print(f"  output-filter CPU per token          p50 {_pct([r['filter_us_per_token'] for r in rows], 0.5):.0f} µs")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0 if timed else 1


if __name__ == "__main__":
    sys.exit(main())
