"""Answer metrics from the full graph with the real LLM: ``python -m evals.answer_eval``.

Per question of ``evals/data/questions_{dev,test}.jsonl``, through the whole graph (guard … output
filter) against the configured LLM server:

- **correct**: every required fact is in the answer (case-insensitive substring, as the data README
  says); ``facts`` also reports the share of facts found;
- **citations supported**: every cited source is a relevant document of the question;
- **abstained** (out-of-catalogue questions): no invented sources and a route to customer service;
- **language**: the answer is in the question's language.

Writes ``answers.json`` and ``answers.md`` under ``var/eval/answers-<time>/`` and prints the table.
The local CPU model is tiny: its figures are what they are; the same command measures the
production model when ``LLM_BASE_URL``/``LLM_MODEL`` point at the GPU server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from chains.language import detect_language
from core.settings import ROOT, get_settings
from evals.eval_report import save
from graph.builder import graph

DATA = ROOT / "evals" / "data"
HALVES = ("test", "dev")
ROUTE = re.compile(r"klantenservice|customer service|klantendienst", re.IGNORECASE)


def load(half: str) -> list[dict[str, Any]]:
    """The questions of one half."""
    path = DATA / f"questions_{half}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def score(item: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """The metrics of one answer."""
    answer = str(out.get("answer") or "")
    cited = [s["id"] for s in out.get("sources") or []]
    facts = item.get("facts") or []
    found = [f for f in facts if _norm(f) in _norm(answer)]
    in_catalogue = bool(item["relevant"])
    row: dict[str, Any] = {
        "qid": item["qid"],
        "category": item["category"],
        "question": item["question"],
        "answer": answer,
        "sources": cited,
        "refused": bool(out.get("refused")),
        "language_ok": detect_language(answer) == item["lang"] if answer else False,
    }
    if in_catalogue:
        row["correct"] = bool(facts) and len(found) == len(facts)
        row["facts_found"] = len(found) / len(facts) if facts else None
        row["citations_supported"] = all(c in item["relevant"] for c in cited) if cited else None
    else:
        row["abstained"] = not cited and bool(ROUTE.search(answer))
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Shares over one half."""

    def share(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return sum(map(float, values)) / len(values) if values else None

    return {
        "questions": len(rows),
        "correct": share("correct"),
        "facts_found": share("facts_found"),
        "citations_supported": share("citations_supported"),
        "abstention": share("abstained"),
        "language_ok": share("language_ok"),
        "refused": share("refused"),
        "seconds_per_answer": share("seconds"),
    }


async def run_half(half: str, limit: int | None) -> list[dict[str, Any]]:
    """Answer every question of ``half`` (one at a time: the CPU LLM is the bottleneck)."""
    rows = []
    for item in tqdm(load(half)[:limit], desc=f"answers ({half})", unit="q"):
        t0 = time.perf_counter()
        out = await graph.ainvoke({"question": item["question"]})
        rows.append({**score(item, out), "seconds": round(time.perf_counter() - t0, 2)})
    return rows


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def markdown(result: dict[str, Any]) -> str:
    """Table per half and the wrong answers."""
    lines = [
        f"# Answer evaluation ({result['started']}, LLM `{result['llm']}` at {result['llm_url']})",
        "",
        "| half | questions | correct | facts found | citations supported | abstention | language | refused "
        "| s/answer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for half, s in result["summary"].items():
        lines.append(
            f"| {half} | {s['questions']} | {_pct(s['correct'])} | {_pct(s['facts_found'])} "
            f"| {_pct(s['citations_supported'])} | {_pct(s['abstention'])} | {_pct(s['language_ok'])} "
            f"| {_pct(s['refused'])} | {s['seconds_per_answer'] or 0:.1f} |"
        )
    lines += ["", "Wrong or unsupported answers:", ""]
    for half, rows in result["rows"].items():
        for r in rows:
            if r.get("correct") is False or r.get("abstained") is False or r.get("citations_supported") is False:
                lines.append(f"- {half} {r['qid']} ({r['category']}): {r['answer'][:160]!r} sources={r['sources']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the answer evaluation and print the table."""
    p = argparse.ArgumentParser(prog="python -m evals.answer_eval", description=__doc__)
    p.add_argument("--half", choices=[*HALVES, "both"], default="both")
    p.add_argument("--limit", type=int, help="only the first N questions per half (smoke runs)")
    p.add_argument("--out", type=Path, help="result folder (default var/eval/answers-<time>)")
    args = p.parse_args(argv)
    settings = get_settings()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or ROOT / "var" / "eval" / f"answers-{stamp}"
    halves = HALVES if args.half == "both" else (args.half,)

    async def run_all() -> dict[str, list[dict[str, Any]]]:
        return {half: await run_half(half, args.limit) for half in halves}

    rows = asyncio.run(run_all())  # one event loop: the model batchers live on it
    result = {
        "started": stamp,
        "llm": settings.llm_model,
        "llm_url": settings.llm_base_url,
        "summary": {half: summarise(r) for half, r in rows.items()},
        "rows": rows,
    }
    save(out, "answers", result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
