"""What checking the stream costs the first token: ``python -m evals.bench_holdback``.

Two ways of releasing streamed text, side by side on the same tokens of the same run: the old 48-character
hold-back window (``guards.output.StreamGuard``: text leaves once the ``HOLDBACK_CHARS`` after it were checked
for leaks) and the sentence-at-a-time check the API streams with now (``guards.stream.SentenceStream``: a whole
sentence leaves once it passed markup, claims and leaks). This runs questions through the real graph (real
embedder, index and LLM server from the settings) as ``api.assistant`` streams them, and records per question:
the time of the LLM's first token, the time each checker released its first text, and the checkers' own CPU
time per token. Questions answered without the model (abstained, routed) are counted, not timed. Needs an
ingested index (``make ingest``) and the LLM server (``make llm-start``).
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
from graph.context import Context
from graph.trust import make_stream
from guards.output import HOLDBACK_CHARS, StreamGuard
from guards.stream import SentenceStream

QUESTIONS = Path(__file__).resolve().parent / "data" / "questions_dev.jsonl"


async def one(question: str, holdback: int) -> dict[str, Any]:
    """Stream one question; times in ms from the request start."""
    guard = StreamGuard(get_resources().output_filter, holdback=holdback)
    checked: SentenceStream | None = None
    state: dict[str, Any] = {}
    t0 = time.perf_counter()
    first_token = first_release = first_sentence = None
    tokens = 0
    filter_s = check_s = 0.0
    async for mode, item in graph.astream({"question": question}, stream_mode=["messages", "updates"]):
        if mode != "messages":
            for update in cast(dict[str, Any], item).values():
                state.update(update or {})
            continue
        chunk, meta = cast(tuple[Any, dict[str, Any]], item)
        if meta.get("langgraph_node") != "generate" or not isinstance(chunk, AIMessageChunk):
            continue
        now = time.perf_counter()
        tokens += 1
        first_token = first_token if first_token is not None else now
        checked = checked or make_stream(state, Context())
        f0 = time.perf_counter()
        released = guard.feed(str(chunk.content))
        f1 = time.perf_counter()
        sentence = checked.feed(str(chunk.content))
        f2 = time.perf_counter()
        filter_s, check_s = filter_s + f1 - f0, check_s + f2 - f1
        if released and first_release is None:
            first_release = f1
        if sentence and first_sentence is None:
            first_sentence = f2
    end = time.perf_counter()
    rest = guard.finish()
    if first_release is None and rest:
        first_release = time.perf_counter()
    if checked is not None and checked.finish(truncated=bool(state.get("truncated"))) and first_sentence is None:
        first_sentence = time.perf_counter()
    ms = lambda t: None if t is None else (t - t0) * 1000.0  # noqa: E731
    return {
        "mode": state.get("mode"),
        "first_token_ms": ms(first_token),
        "first_release_ms": ms(first_release),
        "first_sentence_ms": ms(first_sentence),
        "end_ms": ms(end),
        "tokens": tokens,
        "chars": len(guard.text),
        "filter_us_per_token": filter_s * 1e6 / max(tokens, 1),
        "check_us_per_token": check_s * 1e6 / max(tokens, 1),
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
    print(f"{len(rows)} questions, hold-back {args.holdback} characters, load average {os.getloadavg()[0]:.2f}")
    print(f"  answered without the model (abstained or routed): {sum(r['tokens'] == 0 for r in rows)}/{len(rows)}")
    for label, key in (
        ("LLM first token (ms from request)", "first_token_ms"),
        ("first text released, 48-char window", "first_release_ms"),
    ):
        vals = [r[key] for r in timed]
        print(f"  {label:<40} p50 {_pct(vals, 0.5):.0f}  p95 {_pct(vals, 0.95):.0f}")
    delays = [r["first_release_ms"] - r["first_token_ms"] for r in timed]
    print(
        f"  48-char window: cost to the first token  p50 {_pct(delays, 0.5):.0f} ms  p95 {_pct(delays, 0.95):.0f} ms"
        f"  (mean {statistics.mean(delays):.0f} ms)"
    )
    checked = [r for r in timed if r["first_sentence_ms"] is not None]
    if checked:
        cost = [r["first_sentence_ms"] - r["first_token_ms"] for r in checked]
        extra = [r["first_sentence_ms"] - r["first_release_ms"] for r in checked]
        print(
            f"  sentence check: cost to the first token  p50 {_pct(cost, 0.5):.0f} ms  p95 {_pct(cost, 0.95):.0f} ms"
            f"  ({len(checked)} answers with a passed sentence; the rest go out extractive at the end)"
        )
        print(
            f"  sentence check minus 48-char window      p50 {_pct(extra, 0.5):.0f} ms  p95 {_pct(extra, 0.95):.0f} ms"
        )
        # What a shopper sees first: the first checked sentence, or the extractive answer when the model stops.
        first_text = [(r["first_sentence_ms"] or r["end_ms"]) - r["first_token_ms"] for r in timed]
        print(
            f"  first answer text of any mode, after the LLM's first token  p50 {_pct(first_text, 0.5):.0f} ms"
            f"  p95 {_pct(first_text, 0.95):.0f} ms ({len(first_text)} answers)"
        )
    per_token = [(r["end_ms"] - r["first_token_ms"]) / max(r["tokens"] - 1, 1) for r in timed if r["tokens"] > 1]
    if per_token:
        print(f"  decode time per token                    p50 {_pct(per_token, 0.5):.1f} ms")
    print(
        f"  answers shorter than the window (released only at the end): "
        f"{sum(r['held_to_end'] for r in rows)}/{len(rows)}"
    )
    print(
        f"  output-filter CPU per token              p50 {_pct([r['filter_us_per_token'] for r in rows], 0.5):.0f} µs"
    )
    print(f"  sentence-check CPU per token  p50 {_pct([r['check_us_per_token'] for r in rows], 0.5):.0f} µs")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0 if timed else 1


if __name__ == "__main__":
    sys.exit(main())
