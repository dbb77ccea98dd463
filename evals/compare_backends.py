"""Side-by-side comparison of LLM backends through the full pipeline (issue #6, migration step 3): ``make compare``.

The same questions (the first ``--questions`` with expected facts of ``evals/data/questions_<half>.jsonl``)
go through the whole graph (guard … output filter) once per backend: one after the other, then all at
once ``--concurrency`` at a time. Per backend: latency P50/P95 (sequential and concurrent), success
rate, answer length, correctness (every expected fact in the answer, case-insensitive); per question:
the answers side by side and where the backends disagree. Writes ``compare.json`` and ``compare.md``
under ``var/compare/<time>/``.

Backends: ``LLM_BACKENDS`` (as the service reads it). ``--local`` compares this machine's two engines
instead: the "old" backend as Ollama's native API (``deploy/llm/ollama_shim.py`` over llama.cpp, port
``LLAMACPP_PORT``) and vLLM (``VLLM_PORT``); both must be running (``llmctl.sh start``), the shim is
started here. The local models are tiny: the quality columns only mean something on the GPU server.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

from core import requestctx
from core.backends import backend_specs, make_backend_llm
from core.resources import get_resources, set_resources
from core.settings import ROOT, LLMBackend, get_settings
from evals.compare_report import markdown, summarise
from graph.builder import graph

DATA = ROOT / "evals" / "data"


def load_questions(half: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` questions of ``half`` that have expected facts."""
    rows = [json.loads(line) for line in (DATA / f"questions_{half}.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("facts")][:limit]


async def ask(question: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """One question through the full graph: answer, latency, success, facts found."""
    t0 = time.perf_counter()
    config: RunnableConfig = {"configurable": {"thread_id": f"compare-{uuid.uuid4().hex}"}}
    record: dict[str, Any] = {}  # the request's audit record: a backend error the graph answered around is in it
    token = requestctx.begin(record)
    try:
        out = await asyncio.wait_for(graph.ainvoke({"question": question["question"]}, config), timeout_s)
    except Exception as exc:  # a failed answer is a result here, not a crash
        return {"qid": question["qid"], "ok": False, "error": type(exc).__name__, "latency_s": time.perf_counter() - t0}
    finally:
        requestctx.end(token)
    if record.get("llm_error"):  # the evidence was quoted instead (graph.nodes.generate): the backend failed
        error = str(record["llm_error"])
        return {"qid": question["qid"], "ok": False, "error": error, "latency_s": time.perf_counter() - t0}
    answer = str(out.get("answer") or "")
    found = [f for f in question["facts"] if f.lower() in answer.lower()]
    return {
        "qid": question["qid"],
        "ok": True,
        "latency_s": time.perf_counter() - t0,
        "answer": answer,
        "refused": bool(out.get("refused")),
        "words": len(answer.split()),
        "facts_found": len(found),
        "facts_total": len(question["facts"]),
        "correct": len(found) == len(question["facts"]),
    }


async def run_backend(spec: LLMBackend, questions: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """Sequential, then concurrent runs of ``questions`` with ``spec`` as the only LLM."""
    settings = get_settings()
    base = get_resources()
    set_resources(dataclasses.replace(base, llm=make_backend_llm(spec, settings)))
    try:
        sequential = [await ask(q, settings.request_timeout_s) for q in questions]
        gate = asyncio.Semaphore(concurrency)

        async def bounded(q: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                return await ask(q, settings.request_timeout_s)

        t0 = time.perf_counter()
        concurrent = await asyncio.gather(*(bounded(q) for q in questions))
        wall = time.perf_counter() - t0
    finally:
        set_resources(base)
    return {
        "backend": {"name": spec.name, "kind": spec.kind, "base_url": spec.base_url, "model": spec.model},
        "sequential": sequential,
        "concurrent": list(concurrent),
        "concurrent_wall_s": wall,
    }


def local_backends(shim_url: str) -> list[LLMBackend]:
    """The engines of this machine: the old backend as Ollama (shim over llama.cpp), the new one as vLLM."""
    name = os.environ.get("LLM_SERVED_NAME", "gemma3-270m")
    vllm = f"http://127.0.0.1:{os.environ.get('VLLM_PORT', '8001')}/v1"
    return [
        LLMBackend(name="ollama", kind="ollama", base_url=shim_url, model=name, role="primary", timeout_s=300),
        LLMBackend(name="vllm", kind="openai", base_url=vllm, model=name, timeout_s=300),
    ]


def start_shim(port: int) -> subprocess.Popen[bytes]:
    """The Ollama protocol shim over the llama.cpp engine of ``LLAMACPP_PORT``."""
    import httpx

    upstream = f"http://127.0.0.1:{os.environ.get('LLAMACPP_PORT', '8002')}/v1"
    shim = ROOT / "deploy" / "llm" / "ollama_shim.py"
    proc = subprocess.Popen([sys.executable, str(shim), "--port", str(port), "--upstream", upstream])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/tags", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(
        f"the Ollama shim did not come up over {upstream}: is llama.cpp running (llmctl.sh start llamacpp)?"
    )


async def compare(specs: list[LLMBackend], questions: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """Every backend over the same questions, plus the summary."""
    await asyncio.to_thread(get_resources)  # embedder, index, classifier: once, outside the timings
    runs = []
    for spec in specs:
        print(
            f"[compare] {spec.name}: {len(questions)} questions sequentially, then {concurrency} at a time", flush=True
        )
        runs.append(await run_backend(spec, questions, concurrency))
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "questions": [{k: q[k] for k in ("qid", "question", "facts")} for q in questions],
        "concurrency": concurrency,
        "runs": runs,
        "summary": [summarise(run) for run in runs],
    }


def main(argv: list[str] | None = None) -> None:
    """Run the comparison and write the report."""
    ap = argparse.ArgumentParser(prog="python -m evals.compare_backends", description=__doc__.split("\n\n")[0])
    ap.add_argument("--half", choices=["dev", "test"], default="dev")
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--local", action="store_true", help="Ollama shim over llama.cpp vs. vLLM on this machine")
    ap.add_argument("--shim-port", type=int, default=int(os.environ.get("OLLAMA_SHIM_PORT", "11435")))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    questions = load_questions(args.half, args.questions)
    shim = start_shim(args.shim_port) if args.local else None
    try:
        specs = local_backends(f"http://127.0.0.1:{args.shim_port}") if args.local else backend_specs(get_settings())
        if len(specs) < 2:
            print("[compare] only one backend configured: set LLM_BACKENDS or use --local", flush=True)
        report = asyncio.run(compare(specs, questions, args.concurrency))
    finally:
        if shim is not None:
            shim.terminate()
            shim.wait(timeout=10)
    out = args.out or ROOT / "var" / "compare" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    text = markdown(report)
    (out / "compare.md").write_text(text)
    print(text)
    print(f"[compare] written to {out}")


if __name__ == "__main__":
    main()
