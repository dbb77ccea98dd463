"""The report of ``evals.compare_backends``: a summary per backend and the answers side by side (Markdown)."""

from __future__ import annotations

import statistics
from typing import Any

from core.rollback import p95


def _latency(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    done = [r["latency_s"] for r in rows if r["ok"]]
    return {"p50_s": statistics.median(done) if done else None, "p95_s": p95(done)}


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """One backend's figures: latency, success, length and correctness, sequential and concurrent."""
    seq, conc = run["sequential"], run["concurrent"]
    answered = [r for r in seq if r["ok"]]
    return {
        "backend": run["backend"]["name"],
        "sequential": {**_latency(seq), "success_rate": len(answered) / len(seq) if seq else 0.0},
        "concurrent": {
            **_latency(conc),
            "success_rate": sum(r["ok"] for r in conc) / len(conc) if conc else 0.0,
            "wall_s": run["concurrent_wall_s"],
        },
        "mean_words": statistics.mean(r["words"] for r in answered) if answered else 0.0,
        "correct_rate": sum(r["correct"] for r in answered) / len(seq) if seq else 0.0,
        "facts_rate": (
            sum(r["facts_found"] for r in answered) / sum(r["facts_total"] for r in answered) if answered else 0.0
        ),
        "refused": sum(r["refused"] for r in answered),
    }


def _s(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _cell(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def markdown(report: dict[str, Any]) -> str:
    """The comparison as Markdown: summary table, then one row per question with each backend's answer."""
    names = [s["backend"] for s in report["summary"]]
    lines = [
        f"# Backend comparison ({report['created']})",
        "",
        f"{len(report['questions'])} questions through the full pipeline per backend, sequentially and "
        f"{report['concurrency']} at a time. Correct = every expected fact in the answer.",
        "",
        "| backend | P50 s | P95 s | P50 s (conc.) | P95 s (conc.) | success (conc.) | words | correct | facts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report["summary"]:
        q, c = s["sequential"], s["concurrent"]
        lines.append(
            f"| {s['backend']} | {_s(q['p50_s'])} | {_s(q['p95_s'])} | {_s(c['p50_s'])} | {_s(c['p95_s'])} "
            f"| {c['success_rate']:.0%} | {s['mean_words']:.1f} | {s['correct_rate']:.0%} | {s['facts_rate']:.0%} |"
        )
    by_backend = [{r["qid"]: r for r in run["sequential"]} for run in report["runs"]]
    lines += ["", "## Per question", "", "| qid | facts | " + " | ".join(names) + " | differs |"]
    lines.append("|---|---|" + "---|" * len(names) + "---|")
    for q in report["questions"]:
        rows = [b[q["qid"]] for b in by_backend]
        cells = [
            ("✓ " if r.get("correct") else "✗ ") + _cell(r.get("answer", r.get("error", ""))) if r["ok"] else "error"
            for r in rows
        ]
        differs = len({(r["ok"], bool(r.get("correct"))) for r in rows}) > 1  # an error vs. an answer counts too
        lines.append(
            f"| {q['qid']} | {', '.join(q['facts'])} | " + " | ".join(cells) + f" | {'yes' if differs else ''} |"
        )
    return "\n".join(lines) + "\n"
