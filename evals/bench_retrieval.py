"""Retrieval latency per question: ``python -m evals.bench_retrieval [--model PATH] [--repeat N]``.

Over the evaluation questions (both halves), against the real index (``python -m ingest`` first), it times
(1) embed + search + fuse: the ``expand`` and ``retrieve`` nodes with BM25 and keyword expansion, the query
embedded here (in the service the guard's vector is reused), and (2) reranking the 10 fused candidates with
the cross-encoder alone (no micro-batching wait). Prints p50/p95/max in ms, the truncation (tokens per pair)
and the machine's load average; run it on a quiet machine. A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any

from core.settings import ROOT, get_settings

DEFAULT_MODEL = ROOT / ".cache" / "models" / "reranker-e5-small-kattenhuis"


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(name: str, ms: list[float], target: float) -> str:
    """One line: p50, p95, max and whether p95 meets ``target``."""
    p95 = percentile(ms, 95)
    verdict = "meets" if p95 <= target else "MISSES"
    return (
        f"{name:<28} n={len(ms):3d}  p50 {percentile(ms, 50):6.1f} ms  p95 {p95:6.1f} ms  "
        f"max {max(ms):6.1f} ms  ({verdict} p95 <= {target:.0f} ms)"
    )


async def _retrieve(question: str) -> list[dict[str, Any]]:
    from graph.context import Context
    from graph.nodes import expand, retrieve

    runtime: Any = SimpleNamespace(context=Context(hybrid_bm25=True, expand_queries=True))
    state: dict[str, Any] = {"question": question}
    state.update(await expand(state, runtime))  # type: ignore[arg-type]
    state.update(await retrieve(state, runtime))  # type: ignore[arg-type]
    return list(state.get("candidates") or [])


def main(argv: list[str] | None = None) -> int:
    """Time retrieval and reranking per question; print the figures."""
    import torch

    from core.reranker import CrossEncoderReranker
    from core.resources import set_resources
    from evals.retrieval_eval import HALVES, build_resources, load_questions

    settings = get_settings()
    default = settings.reranker_model if settings.reranker_provider == "cross-encoder" else str(DEFAULT_MODEL)
    ap = argparse.ArgumentParser(prog="python -m evals.bench_retrieval", description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=default, help="cross-encoder folder or name")
    ap.add_argument("--max-length", type=int, default=settings.reranker_max_length, help="tokens per pair")
    ap.add_argument("--repeat", type=int, default=2, help="passes over the questions (the first is warm-up)")
    args = ap.parse_args(argv)

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    load_before = os.getloadavg()
    res = build_resources(settings.model_copy(update={"reranker_provider": "none"}))
    set_resources(res)
    reranker = CrossEncoderReranker(args.model, device=settings.embedding_device, max_length=args.max_length)
    tokenizer = reranker._model.tokenizer
    questions = [q.question for h in ("dev", "test") for q in load_questions(HALVES[h])]

    search_ms: list[float] = []
    rerank_ms: list[float] = []
    tokens: list[int] = []
    for rep in range(max(args.repeat, 2)):
        for question in questions:
            t0 = time.perf_counter()
            candidates = asyncio.run(_retrieve(question))
            t1 = time.perf_counter()
            texts = [c["text"] for c in candidates]
            reranker.score(question, texts, [c["rrf"] for c in candidates])
            t2 = time.perf_counter()
            if rep:  # the first pass warms caches and the BM25 index
                search_ms.append((t1 - t0) * 1000)
                rerank_ms.append((t2 - t1) * 1000)
                enc = tokenizer([question] * len(texts), texts, truncation=True, max_length=args.max_length)
                tokens.append(sum(len(ids) for ids in enc["input_ids"]))
    load_after = os.getloadavg()
    n_layers = getattr(reranker._model.model.config, "num_hidden_layers", "?")
    print(f"reranker: {args.model} ({n_layers} layers), max {args.max_length} tokens per (question, passage) pair")
    passes = max(args.repeat, 2) - 1
    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs; {len(questions)} questions x {passes}")
    print(summary("embed + search + fuse", search_ms, 100))
    print(summary("rerank 10 candidates", rerank_ms, 500))
    print(f"tokens per rerank call: mean {statistics.mean(tokens):.0f}, max {max(tokens)}")
    before, after = (f"{a[0]:.2f}/{a[1]:.2f}/{a[2]:.2f}" for a in (load_before, load_after))
    print(f"load average (1/5/15 min) before {before}, after {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
