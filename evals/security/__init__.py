"""Security suite: ``python -m evals.security [--url URL] [--start-server] [--out DIR] [--control]``.

See ``evals/SECURITY.md``: what is sent (``cases``), how each response is judged (``judge``), how
requests go out (``client``), how the API under test is started (``launch``), the run and its report
(``report``), and the positive control with a scripted leaking LLM (``control``).
"""

from evals.security.cases import (
    ATTACK_CATEGORIES,
    BENIGN,
    BENIGN_TARGET,
    JAILBREAKS,
    Case,
    load_cases,
    malformed_cases,
    read_jsonl,
)
from evals.security.client import Response, Result, reassemble_stream, sse_events
from evals.security.control import run_control
from evals.security.judge import Judge, Verdict
from evals.security.launch import started_server
from evals.security.leaks import LEAK_KINDS
from evals.security.report import passed, run_suite, summarise

__all__ = [
    "ATTACK_CATEGORIES",
    "BENIGN",
    "BENIGN_TARGET",
    "JAILBREAKS",
    "LEAK_KINDS",
    "Case",
    "Judge",
    "Response",
    "Result",
    "Verdict",
    "load_cases",
    "malformed_cases",
    "passed",
    "read_jsonl",
    "reassemble_stream",
    "run_control",
    "run_suite",
    "sse_events",
    "started_server",
    "summarise",
]
