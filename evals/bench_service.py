"""What our service costs on top of the LLM: ``python -m evals.bench_service`` (part of ``make bench``).

For each question, side by side in one run:

(i)  the final prompt (system turn + retrieved context + question, exactly as the API built it,
     read from the admin ``/admin/rag/stream_events`` of the running API) sent straight to the
     LLM server (``LLM_BASE_URL``, streaming, the service's generation settings);
(ii) the same question through the API's ``/rag/stream``, with the time per graph node from
     the API's audit line (matched by ``X-Request-ID``).

Prints end-to-end and first-token times of both, the breakdown of (ii) into guard, expansion,
retrieval, rerank, evidence, generation, check and the rest, the share of time outside LLM calls, and the
resident memory (RSS) of the API process at idle (before the first request of this run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from core.settings import ROOT, get_settings
from evals.bench_latency import MAX_WAITS, QUESTIONS, rss_mib, wait_out

STAGES = (
    ("guard", "guard"),
    ("scope", "scope"),
    ("expansion", "expand"),
    ("retrieval", "retrieve"),
    ("rerank", "rerank"),
    ("evidence (line selection)", "evidence"),
    ("check (markup, claims, leaks)", "check"),
)


def final_prompt(client: httpx.Client, url: str, token: str, question: str) -> list[dict[str, str]]:
    """The messages the API's prompt node built for ``question`` (admin stream of graph events)."""
    body = {"input": {"question": question}, "include_names": ["prompt"]}
    headers = {"Authorization": f"Bearer {token}"}
    with client.stream("POST", url + "/admin/rag/stream_events", json=body, headers=headers) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:].strip() or "{}")
            if isinstance(event, dict) and event.get("event") == "on_chain_end" and event.get("name") == "prompt":
                msgs = (event.get("data", {}).get("output") or {}).get("messages") or []
                roles = {"system": "system", "human": "user", "ai": "assistant"}
                return [{"role": roles[m["type"]], "content": m["content"]} for m in msgs]  # [] when it abstained
    raise RuntimeError("the API sent no prompt for this question (refused or no context?)")


def direct(client: httpx.Client, messages: list[dict[str, str]]) -> tuple[float, float, int]:
    """Stream the prompt straight from the LLM server: (first token s, end s, chunks)."""
    s = get_settings()
    body: dict[str, Any] = {
        "model": s.llm_model,
        "messages": messages,
        "max_tokens": s.llm_max_tokens,
        "temperature": s.llm_temperature,
        "frequency_penalty": s.llm_frequency_penalty,
        "stream": True,
        **({"stop": s.llm_stop} if s.llm_stop else {}),
        **s.llm_extra_body,
    }
    headers = {"Authorization": f"Bearer {s.llm_api_key.get_secret_value()}"}
    t0, first, chunks = time.perf_counter(), None, 0
    with client.stream("POST", s.llm_base_url.rstrip("/") + "/chat/completions", json=body, headers=headers) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            choices = json.loads(line[5:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                chunks += 1
                first = first if first is not None else time.perf_counter() - t0
    total = time.perf_counter() - t0
    return (first if first is not None else total), total, chunks


def through_api(client: httpx.Client, url: str, question: str) -> tuple[float, float, str]:
    """Stream the question through ``/rag/stream``: (first answer chunk s, end s, request id)."""
    for _ in range(MAX_WAITS):
        t0, first = time.perf_counter(), None
        with client.stream("POST", url + "/rag/stream", json={"input": {"question": question}}) as r:
            if r.status_code == 429:  # the per-IP limit: waited out below, not measured
                r.read()
            else:
                r.raise_for_status()
                request_id = r.headers.get("x-request-id", "")
                for line in r.iter_lines():
                    if first is None and line.startswith("data:") and '"answer"' in line:
                        first = time.perf_counter() - t0
                total = time.perf_counter() - t0
                return (first if first is not None else total), total, request_id
        wait_out(r)
    raise RuntimeError("still rate-limited after waiting")


def audit_nodes(path: Path, request_id: str, wait_s: float = 5.0) -> dict[str, float]:
    """``nodes_ms`` of the request's audit line (written by a background thread: wait for it)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if path.exists():
            for line in reversed(path.read_text(encoding="utf-8").splitlines()[-500:]):
                if request_id in line:
                    return dict(json.loads(line).get("nodes_ms") or {})
        time.sleep(0.1)
    raise RuntimeError(f"no audit line for request {request_id} in {path}")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the tables."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--questions", type=int, default=len(QUESTIONS), help="how many of the fixed questions")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--audit-log", type=Path, default=get_settings().audit_log_path)
    p.add_argument("--admin-token-file", type=Path, default=ROOT / "var" / "admin_token")
    p.add_argument("--api-pid-file", type=Path, default=ROOT / "var" / "run" / "api.pid")
    args = p.parse_args(argv)
    token = os.environ.get("ADMIN_TOKEN") or (
        args.admin_token_file.read_text().strip() if args.admin_token_file.exists() else ""
    )
    if not token:
        p.error("needs the API's admin token (ADMIN_TOKEN or var/admin_token) to read the final prompt")
    idle = rss_mib(args.api_pid_file)
    client = httpx.Client(timeout=300)
    rows: list[dict[str, Any]] = []
    questions = QUESTIONS[: args.questions]
    # Warm-up (not measured): fetching the prompt runs the API path once; then one direct call per question,
    # so that both paths meet the LLM server's prefix cache in the same state.
    prompts = {q: final_prompt(client, args.url, token, q) for q in questions}
    skipped = [q for q in questions if not prompts[q]]  # answered without the model (abstained): no LLM to compare
    for q in skipped:
        print(f"  not compared (answered without the LLM): {q}")
    questions = [q for q in questions if prompts[q]]
    for q in questions:
        direct(client, prompts[q])
    for round_no in range(args.rounds):
        for q in questions:
            if round_no % 2 == 0:  # alternate which path goes first
                d_first, d_total, chunks = direct(client, prompts[q])
                a_first, a_total, rid = through_api(client, args.url, q)
            else:
                a_first, a_total, rid = through_api(client, args.url, q)
                d_first, d_total, chunks = direct(client, prompts[q])
            nodes = audit_nodes(args.audit_log, rid)
            rows.append({"d_first": d_first, "d_total": d_total, "a_first": a_first, "a_total": a_total, **nodes})
            print(f"  direct {d_total:6.2f} s ({chunks} chunks)   API {a_total:6.2f} s   {q}")

    def med(key: str, scale: float = 1.0) -> float:
        return statistics.median(r.get(key, 0.0) for r in rows) * scale

    s = get_settings()
    print(f"\nLLM {s.llm_model} at {s.llm_base_url}, max_tokens {s.llm_max_tokens}; {len(rows)} runs, medians")
    print("\n| path | first token s | end to end s |\n|---|---|---|")
    print(f"| (i) final prompt straight to the LLM server | {med('d_first'):.3f} | {med('d_total'):.3f} |")
    print(f"| (ii) same question through the API (`/rag/stream`) | {med('a_first'):.3f} | {med('a_total'):.3f} |")
    print("\n| stage of (ii) | median ms | share of end to end |\n|---|---|---|")
    a_total_ms = med("a_total", 1000)
    stages = (*STAGES, ("generation (LLM call)", "generate"))
    for r in rows:
        r["rest"] = 1000 * r["a_total"] - sum(r.get(node, 0.0) for _, node in stages)
    for label, node in (*stages, ("rest (prompt, output filter, HTTP, streaming)", "rest")):
        print(f"| {label} | {med(node):.1f} | {100 * med(node) / a_total_ms:.1f} % |")
    outside = [1 - r.get("generate", 0.0) / (1000 * r["a_total"]) for r in rows]
    extra = [(r["a_total"] - r["d_total"]) / r["a_total"] for r in rows]
    outside_ms = [1000 * r["a_total"] - r.get("generate", 0.0) for r in rows]
    print(f"\nservice time outside LLM calls: p50 {statistics.median(outside_ms):.0f} ms (per request)")
    print(f"share of (ii) outside LLM calls: {100 * statistics.median(outside):.1f} % (median per request)")
    print(f"(ii) minus (i), as a share of (ii): {100 * statistics.median(extra):.1f} % (median per question)")
    print("first token through the API: the first whole sentence that passed the check (guards.stream)")
    print(f"API process RSS at idle: {f'{idle:.0f} MiB' if idle else 'unknown (no pid file)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
