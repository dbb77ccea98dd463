"""Answer metrics from the full graph with the real LLM: ``python -m evals.answer_eval``.

Per question of ``evals/data/questions_{test,dev,dev_ooc}.jsonl`` (the ``dev_ooc`` half is
optional: skipped with a message when its file is missing), through the whole graph (guard …
output filter) against the configured LLM server. The metrics are those of ``evals.answer_metrics``: correct
(also per mode), unsupported claims by an independent diff against the cited documents
(``evals.claim_diff``), citations supported, abstention and false abstention with 95 % Wilson intervals,
evidence recall, language, prompt tokens and seconds per answer; per half, per category and per mode.

Writes ``answers.json``, ``answers.md`` and ``answers.png`` under ``var/eval/answers-<time>/`` and prints
the tables. The local CPU model is tiny: its figures are what they are; the same command measures the
production model when ``LLM_BASE_URL``/``LLM_MODEL`` point at the GPU server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core import requestctx
from core.settings import ROOT, get_settings
from evals.answer_metrics import is_flagged, score, summarise, summary_of_half
from evals.claim_diff import load_catalogue
from evals.eval_report import save

__all__ = ["HALVES", "load", "main", "markdown", "plot", "run_half", "score", "summarise"]

DATA = ROOT / "evals" / "data"
HALVES = ("test", "dev", "dev_ooc", "dev2", "benign")
CHOICES = {"both": ("test", "dev"), "all": ("test", "dev", "dev_ooc")}
BENIGN = "security_benign.jsonl"  # the security suite's benign questions: only unsupported claims are scored
OPTIONAL = frozenset({"dev_ooc", "dev2"})  # written separately; skipped with a message while it does not exist
PLOTTED = (
    ("correct", "correct"),
    ("citations_supported", "citations supported"),
    ("abstention", "abstention (out of catalogue)"),
    ("false_abstention", "false abstention (in catalogue)"),
)


def load(half: str, data: Path | None = None) -> list[dict[str, Any]] | None:
    """The questions of one half; ``None`` when an optional half's file does not exist."""
    if half == "benign":  # {"id", "lang", "text"}: no facts, no relevant documents
        rows = (json.loads(x) for x in ((data or DATA) / BENIGN).read_text(encoding="utf-8").splitlines() if x.strip())
        return [{"qid": r["id"], "question": r["text"], "lang": r["lang"], "category": "benign"} for r in rows]
    path = (data or DATA) / f"questions_{half}.jsonl"
    if half in OPTIONAL and not path.exists():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def available(halves: tuple[str, ...], data: Path | None = None) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The questions of each half that exists, and one message per optional half that was skipped."""
    data = data or DATA
    found: dict[str, list[dict[str, Any]]] = {}
    skipped: list[str] = []
    for half in halves:
        items = load(half, data)
        if items is None:
            skipped.append(f"{half} half skipped: {data / f'questions_{half}.jsonl'} does not exist")
        else:
            found[half] = items
    return found, skipped


async def run_half(half: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answer every question of ``half`` (one at a time: the CPU LLM is the bottleneck)."""
    from graph.builder import graph  # here, not at import: the scoring and its tests need no models

    catalogue = load_catalogue()
    rows = []
    for item in tqdm(items, desc=f"answers ({half})", unit="q"):
        record: dict[str, Any] = {}  # the request's audit record: prompt tokens, node times, evidence line ids
        token = requestctx.begin(record)
        t0 = time.perf_counter()
        try:
            out = await graph.ainvoke({"question": item["question"]})
        finally:
            seconds = round(time.perf_counter() - t0, 2)
            requestctx.end(token)
        tokens = record.get("tokens") or {}
        out = {**out, "prompt_tokens": tokens.get("prompt")}
        failed = (record.get("check") or {}).get("failed") or {}
        rows.append({**score(item, out, catalogue), "seconds": seconds, "failed_stage": failed.get("stage")})
    return rows


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ci(s: dict[str, Any], key: str) -> str:
    ci = s[f"{key}_ci"]
    k = round((s[key] or 0) * s[f"{key}_n"])
    return "no questions" if ci is None else f"{k}/{s[f'{key}_n']}, 95 % CI [{_pct(ci[0])}, {_pct(ci[1])}]"


def overall_table(s: dict[str, Any]) -> list[str]:
    """The overall figures of one half."""
    by_mode = s["correct_by_mode"]
    return [
        "| metric | value | detail |",
        "|---|---:|---|",
        f"| correct | {_pct(s['correct'])} | generated {_pct(by_mode['generated'])}, "
        f"extractive {_pct(by_mode['extractive'])} |",
        f"| facts found | {_pct(s['facts_found'])} | |",
        f"| answers with an unsupported claim | {_pct(s['unsupported_share'])} | {s['unsupported_answers']} "
        f"of {s['questions']} |",
        f"| citations supported | {_pct(s['citations_supported'])} | |",
        f"| abstention (out of catalogue) | {_pct(s['abstention'])} | {_ci(s, 'abstention')} |",
        f"| false abstention (in catalogue) | {_pct(s['false_abstention'])} | {_ci(s, 'false_abstention')} |",
        f"| evidence recall | {_pct(s['evidence_recall'])} | facts all in the selected evidence lines |",
        f"| language ok | {_pct(s['language_ok'])} | |",
        f"| refused | {_pct(s['refused'])} | |",
        f"| prompt tokens (median) | {_num(s['prompt_tokens_median'], 0)} | |",
        f"| seconds per answer | {_num(s['seconds_median'])} | median; mean {_num(s['seconds_mean'])} |",
    ]


def group_table(name: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    """One row per category or mode."""
    lines = [
        f"| {name} | answers | correct | with unsupported claims | citations supported | abstention | false abstention "
        "| evidence recall | language | prompt tokens | s/answer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for group, s in groups.items():
        lines.append(
            f"| {group} | {s['questions']} | {_pct(s['correct'])} "
            f"| {s['unsupported_answers']} ({_pct(s['unsupported_share'])}) | {_pct(s['citations_supported'])} "
            f"| {_pct(s['abstention'])} | {_pct(s['false_abstention'])} "
            f"| {_pct(s['evidence_recall'])} | {_pct(s['language_ok'])} | {_num(s['prompt_tokens_median'], 0)} "
            f"| {_num(s['seconds_median'])} |"
        )
    return lines


def _why(r: dict[str, Any]) -> str:
    reasons = [
        text
        for flag, text in (
            (r.get("correct") is False, "facts missing"),
            (r.get("citations_supported") is False, "citation not relevant" if r["sources"] else "no sources"),
            (r.get("abstained") is False, "did not abstain"),
            (bool(r.get("false_abstention")), "abstained in the catalogue"),
        )
        if flag
    ]
    return "; ".join(reasons + r.get("unsupported_claims", []))


def markdown(result: dict[str, Any]) -> str:
    """Per half: the overall figures, the per-category and per-mode tables and the flagged answers."""
    lines = [f"# Answer evaluation ({result['started']}, LLM `{result['llm']}` at {result['llm_url']})", ""]
    lines += [f"*{message}.*" for message in result.get("skipped", [])]
    for half, s in result["summary"].items():
        lines += ["", f"## {half} half ({s['questions']} questions)", "", *overall_table(s)]
        lines += ["", f"### Per category ({half})", "", *group_table("category", s["by_category"])]
        lines += ["", f"### Per mode ({half})", "", *group_table("mode", s["by_mode"])]
        lines += ["", f"### Wrong or unsupported answers ({half})", ""]
        flagged = [r for r in result["rows"][half] if is_flagged(r)]
        lines += [
            f"- {r['qid']} ({r['category']}, {r['mode']}): {_why(r)}. Answer {r['answer'][:160]!r}, "
            f"sources {r['sources']}"
            for r in flagged
        ] or ["None."]
    return "\n".join(lines) + "\n"


def plot(path: Path, summaries: dict[str, dict[str, Any]]) -> bool:
    """Grouped bars per half (correct, citations, abstention, false abstention with Wilson error bars)."""
    try:
        import matplotlib
    except ImportError:  # matplotlib is in the dev extra (``make install`` has it), not in the runtime deps
        print("matplotlib is not installed: no answers.png", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(summaries), 1)
    for i, (half, s) in enumerate(summaries.items()):
        values = [s[key] if s[key] is not None else float("nan") for key, _ in PLOTTED]
        xs = [j + i * width for j in range(len(PLOTTED))]
        ax.bar(xs, values, width, label=half)
        for x, (key, _) in zip(xs, PLOTTED, strict=True):
            ci, value = s.get(f"{key}_ci"), s[key]
            if ci and value is not None:
                ax.errorbar(
                    [x], [value], yerr=[[value - ci[0]], [ci[1] - value]], fmt="none", ecolor="black", capsize=3
                )
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(PLOTTED))], [label for _, label in PLOTTED], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of questions")
    ax.set_title("Answers per half (error bars: 95 % Wilson intervals)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the answer evaluation and print the tables."""
    p = argparse.ArgumentParser(prog="python -m evals.answer_eval", description=__doc__)
    p.add_argument(
        "--half",
        choices=[*HALVES, *CHOICES],
        default="all",
        help="both: test+dev; all: + dev_ooc; benign: the security suite's benign questions (unsupported claims only)",
    )
    p.add_argument("--limit", type=int, help="only the first N questions per half (smoke runs)")
    p.add_argument("--out", type=Path, help="result folder (default var/eval/answers-<time>)")
    args = p.parse_args(argv)
    halves, skipped = available(CHOICES.get(args.half, (args.half,)))
    for message in skipped:
        print(message, file=sys.stderr)
    if not halves:
        return 1
    settings = get_settings()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or ROOT / "var" / "eval" / f"answers-{stamp}"

    async def run_all() -> dict[str, list[dict[str, Any]]]:
        return {half: await run_half(half, items[: args.limit]) for half, items in halves.items()}

    rows = asyncio.run(run_all())  # one event loop: the model batchers live on it
    result: dict[str, Any] = {
        "started": stamp,
        "llm": settings.llm_model,
        "llm_url": settings.llm_base_url,
        "skipped": skipped,
        "summary": {half: summary_of_half(r) for half, r in rows.items()},
        "rows": rows,
    }
    save(out, "answers", result, markdown(result))
    if plot(out / "answers.png", result["summary"]):
        print(f"plot: {out / 'answers.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
