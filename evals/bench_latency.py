"""Latency and memory of a running stack: ``python -m evals.bench_latency`` (``make bench``).

Asks each question once through ``/rag/invoke`` and once through ``/rag/stream`` (time to
the first answer token), sequentially, at one user, and prints a table plus the resident
memory of the API and LLM server processes found by their pid files.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import httpx

QUESTIONS = [
    "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?",
    "Wat kost verzending naar België?",
    "Hoe lang heb ik om iets te retourneren?",
    "Hoeveel garantie zit er op de AquaPaws Steel 3?",
    "How much does the CatCave Classic 55 cost?",
]


def rss_mib(pid_file: Path) -> float | None:
    """Resident memory of the process in ``pid_file`` and its children, in MiB."""
    if not pid_file.exists():
        return None
    pid = pid_file.read_text().strip()
    out = subprocess.run(["ps", "-o", "rss=", "--ppid", pid, "-p", pid], capture_output=True, text=True)
    kib = sum(int(x) for x in out.stdout.split())
    return kib / 1024 if kib else None


MAX_WAITS = 20  # 429s waited out per request before giving up


def wait_out(r: httpx.Response) -> bool:
    """Wait out a 429 (the API's per-IP limit, 10/minute by default); True when the request should be resent.

    The wait is printed and is not part of any measured time.
    """
    if r.status_code != 429:
        return False
    wait = min(float(r.headers.get("retry-after", "6")), 120.0)
    print(f"  (rate limit: waiting {wait:.0f} s, not measured)", flush=True)
    time.sleep(wait)
    return True


def invoke_s(client: httpx.Client, url: str, question: str) -> tuple[float, httpx.Response]:
    """Seconds for one ``/rag/invoke`` and its response."""
    for _ in range(MAX_WAITS):
        t0 = time.perf_counter()
        r = client.post(url + "/rag/invoke", json={"input": {"question": question}})
        if not wait_out(r):
            r.raise_for_status()
            return time.perf_counter() - t0, r
    raise RuntimeError("still rate-limited after waiting")


def first_token_s(client: httpx.Client, url: str, question: str) -> tuple[float, float]:
    """Seconds to the first answer chunk and to the end of the stream."""
    for _ in range(MAX_WAITS):
        t0 = time.perf_counter()
        first = None
        with client.stream("POST", url + "/rag/stream", json={"input": {"question": question}}) as r:
            if r.status_code == 429:
                r.read()
            else:
                r.raise_for_status()
                for line in r.iter_lines():
                    if first is None and line.startswith("data:") and '"answer"' in line:
                        first = time.perf_counter() - t0
                total = time.perf_counter() - t0
                return (first if first is not None else total), total
        wait_out(r)
    raise RuntimeError("still rate-limited after waiting")


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    client = httpx.Client(timeout=180)
    invoke, ttft, stream_total = [], [], []
    for _ in range(args.rounds):
        for q in QUESTIONS:
            seconds, r = invoke_s(client, args.url, q)
            invoke.append(seconds)
            first, total = first_token_s(client, args.url, q)
            ttft.append(first)
            stream_total.append(total)
            print(
                f"  {invoke[-1]:6.2f} s  {q}  ->  {json.dumps(r.json()['output']['answer'], ensure_ascii=False)[:90]}"
            )

    def row(name: str, xs: list[float]) -> str:
        xs = sorted(xs)
        p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
        return f"| {name} | {len(xs)} | {statistics.median(xs):.2f} | {p95:.2f} | {max(xs):.2f} |"

    print("\n| measure (1 user, sequential) | n | p50 s | p95 s | max s |\n|---|---|---|---|---|")
    print(row("invoke, end to end", invoke))
    print(row("stream, first answer token", ttft))
    print(row("stream, end to end", stream_total))
    print("\n| process | RSS MiB |\n|---|---|")
    for name, pid in [("API (uvicorn)", "var/run/api.pid"), ("vLLM CPU server", "var/run/llm-vllm.pid")]:
        mem = rss_mib(Path(pid))
        print(f"| {name} | {mem:.0f} |" if mem else f"| {name} | not running |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
