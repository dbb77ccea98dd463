"""Where a load-test step's time and CPU went: checkpointer, guard queue vs model, CPU per process, chat turns.

Sources: ``loadtest.*`` in the audit lines (timers that ``evals.loadtest.apiserver`` adds to the API under
test: the checkpointer's reads and writes, the guard's queue wait and model time), ``rewrite.ms`` of the
audit line (the follow-up rewrite call), the step's ``cpu_s`` in the manifest (``evals.loadtest.cpu``), and
the ``turn`` of the chat door's result lines.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TIMERS = ("checkpoint_ms", "guard_queue_ms", "guard_model_ms", "guard_classify_ms")
PROCESSES = (("api", "API"), ("llm", "LLM server"), ("loadgen", "load generator"))


def _dist(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)), "n": len(values)}


def summarise(step: dict[str, Any], ok: list[dict[str, Any]], joined: list[dict[str, Any]]) -> dict[str, Any]:
    """The breakdown figures of one step: ``ok`` its successful result lines, ``joined`` their audit lines."""
    timers: dict[str, Any] = {}
    for key in TIMERS:
        timers[key] = _dist([float(a["loadtest"][key]) for a in joined if key in (a.get("loadtest") or {})])
    calls = [
        float(a["loadtest"]["checkpoint_calls"]) for a in joined if "checkpoint_calls" in (a.get("loadtest") or {})
    ]
    rewrites = [a["rewrite"] for a in joined if isinstance(a.get("rewrite"), dict)]
    rewrite = [float(r["ms"]) for r in rewrites if "ms" in r]
    turns: dict[str, Any] = {}
    for turn in sorted({int(r["turn"]) for r in ok if r.get("turn")}):
        mine = [r for r in ok if r.get("turn") == turn]
        turns[str(turn)] = {
            "ok": len(mine),
            "ttft": _dist([float(r["ttft_s"]) for r in mine if r.get("ttft_s") is not None]),
            "total": _dist([float(r["total_s"]) for r in mine]),
        }
    return {
        "door": step.get("door", "rag"),
        "timers": timers,
        "checkpoint_calls_mean": float(np.mean(calls)) if calls else None,
        "rewrite_ms": _dist(rewrite),
        "turns": turns,
        "cpu_s": step.get("cpu_s") or {},
        "cpu_window_s": float(step["ended"]) - float(step["started"]),  # what the CPU clock spanned
    }


def _ms(d: dict[str, float] | None) -> str:
    return "–" if d is None else f"{d['p50']:.1f} / {d['p95']:.1f}"


def _s(d: dict[str, float] | None) -> str:
    return "–" if d is None else f"{d['p50']:.2f} / {d['p95']:.2f}"


def _cpu(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def markdown(summaries: list[dict[str, Any]]) -> list[str]:
    """Report lines: the CPU table, guard and checkpointer times, chat turns (each only when it has data)."""
    lines: list[str] = []
    if any(s.get("cpu_s") for s in summaries):
        lines += [
            "",
            "CPU seconds per process over the whole step, locust's start-up and shut-down included "
            "(psutil; the load generator: locust, a waited-for child of this script); API cores = API CPU s / step s:",
            "",
        ]
        lines += ["| step | " + " | ".join(h for _, h in PROCESSES) + " | API CPU ms per answer | API cores |"]
        lines += ["|---" * (len(PROCESSES) + 3) + "|"]
        for s in summaries:
            cpu = s.get("cpu_s") or {}
            api = cpu.get("api")
            per_answer = "–" if api is None or not s["ok"] else f"{1000 * api / s['ok']:.0f}"
            cores = "–" if api is None or not s.get("cpu_window_s") else f"{api / s['cpu_window_s']:.2f}"
            cells = [_cpu(cpu.get(k)) for k, _ in PROCESSES]
            lines.append(f"| {s['name']} | " + " | ".join(cells) + f" | {per_answer} | {cores} |")
    if any(any(s["timers"].values()) or s.get("rewrite_ms") for s in summaries):
        lines += [
            "",
            "Guard and conversation store, P50 / P95 ms per request (load-test timers in the audit line: "
            "queue = the question's vectors waiting for their batch and a model thread, model = the embedding "
            "batch's run; checkpointer = the saver's reads and writes; rewrite = the follow-up rewrite step):",
            "",
            "| step | guard classifier | guard queue | guard model | checkpointer | checkpointer calls | rewrite |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in summaries:
            t = s["timers"]
            calls = s.get("checkpoint_calls_mean")
            lines.append(
                f"| {s['name']} | {_ms(t.get('guard_classify_ms'))} | {_ms(t.get('guard_queue_ms'))} "
                f"| {_ms(t.get('guard_model_ms'))} | {_ms(t.get('checkpoint_ms'))} "
                f"| {'–' if calls is None else f'{calls:.1f}'} | {_ms(s.get('rewrite_ms'))} |"
            )
    chats = [s for s in summaries if s.get("turns")]
    if chats:
        lines += ["", "Chat turns (turn 2: the follow-up on the same thread), P50 / P95 s:", ""]
        lines += ["| step | turn | answers | TTFT | total |", "|---|---|---|---|---|"]
        for s in chats:
            for turn, t in s["turns"].items():
                lines.append(f"| {s['name']} | {turn} | {t['ok']} | {_s(t['ttft'])} | {_s(t['total'])} |")
    return lines
