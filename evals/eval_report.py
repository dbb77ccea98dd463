"""Outputs of the retrieval evaluation: ``result.json``, ``report.md``, ``metrics.png`` and the printed table."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.retrieval_eval import Outcome, Question

Summaries = dict[str, dict[str, dict[str, Any]]]  # half → config → column → value
PLOTTED = ("MRR@10", "P@1", "Hit@3", "NDCG@5", "NDCG@10", "Recall@5")


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}" if value > 1.5 else f"{value:.3f}"
    return str(value)


def table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """A Markdown table: one row per configuration, one column per summary field."""
    columns = list(next(iter(rows.values())))
    lines = ["| Configuration | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(_cell(s[c]) for c in columns) + " |" for name, s in rows.items()]
    return lines


def format_tables(summaries: Summaries) -> str:
    """The tables printed at the end of a run, one per half."""
    parts = []
    for half, rows in summaries.items():
        parts += [f"\n{half} half", *table(rows)]
    return "\n".join(parts)


def _is_miss(q: Question, o: Outcome) -> bool:
    """In the catalogue: the top document is not relevant. Out of it: the retrieval did not abstain."""
    if not q.relevant:
        return not o.abstained
    return not o.docs or q.relevant.get(o.docs[0], 0) <= 0


def misses(questions: list[Question], by_config: dict[str, list[Outcome]]) -> list[str]:
    """Questions missed by at least one configuration: a ✗/✓ grid plus what the last configuration returned."""
    names = list(by_config)
    last = names[-1]
    lines = [
        f"| Question | Category | {' | '.join(names)} | Relevant | Top 3 ({last}) |",
        "|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for i, q in enumerate(questions):
        row = [by_config[n][i] for n in names]
        if not any(_is_miss(q, o) for o in row):
            continue
        marks = " | ".join("✗" if _is_miss(q, o) else "✓" for o in row)
        relevant = ", ".join(f"{d} ({g})" for d, g in q.relevant.items()) or "none: abstain"
        got = row[-1].docs[:3]
        top3 = ", ".join(got) if got else f"(routed: {row[-1].routed})" if row[-1].routed else "(abstained)"
        lines.append(f"| {q.qid}: {q.question} | {q.category} | {marks} | {relevant} | {top3} |")
    return lines if len(lines) > 2 else ["No misses."]


def coverage(questions: list[Question], outcomes: list[Outcome], catalogue: list[str]) -> list[str]:
    """Check that every catalogue document is the top hit for at least one in-catalogue question."""
    tops: dict[str, list[str]] = {}
    for q, o in zip(questions, outcomes, strict=True):
        if q.relevant and o.docs:
            tops.setdefault(o.docs[0], []).append(q.qid)
    missing = [d for d in catalogue if d not in tops]
    verdict = "yes" if not missing else f"no: never the top hit: {', '.join(missing)}"
    lines = [f"Every one of the {len(catalogue)} documents is the top hit for ≥ 1 question: **{verdict}**", ""]
    lines += [f"- `{d}`: {', '.join(tops.get(d, [])) or '–'}" for d in catalogue]
    return lines


def thresholds(questions: list[Question], outcomes: list[Outcome]) -> list[str]:
    """Best dense score of each out-of-catalogue question next to the in-catalogue range (a threshold to split?)."""
    inside = [o.top_score for q, o in zip(questions, outcomes, strict=True) if q.relevant and o.top_score is not None]
    outside = [(q.qid, o.top_score) for q, o in zip(questions, outcomes, strict=True) if not q.relevant]
    lines = [f"In-catalogue questions: best dense score {min(inside):.3f} … {max(inside):.3f}." if inside else ""]
    lines += [f"- {qid} (out of catalogue): best dense score {_cell(s)}" for qid, s in outside]
    routed = [f"{q.qid} ({o.routed})" for q, o in zip(questions, outcomes, strict=True) if o.routed]
    lines.append(f"Routed to customer service before retrieval (chains.scope): {', '.join(routed) or 'none'}.")
    return lines


def comparisons(by_config: dict[str, list[Outcome]], metric: str = "MRR@10") -> dict[str, list[float]]:
    """Paired bootstrap of ``metric`` over the in-catalogue questions: name → [Δ mean, CI low, CI high].

    Each configuration against dense only, and the reranker's own effect (full against full without reranking).
    """
    from evals.metrics import paired_bootstrap

    def scores(name: str) -> dict[str, float]:
        return {o.qid: o.metrics[metric] for o in by_config[name] if o.metrics}

    pairs = [("dense only", n) for n in by_config if n != "dense only"]
    if "full" in by_config and "+ BM25 + expansion" in by_config:
        pairs.append(("+ BM25 + expansion", "full"))
    return {
        f"{b} vs {a}": list(paired_bootstrap(scores(a), scores(b)))
        for a, b in pairs
        if a in by_config and scores(a) and scores(b)
    }


def markdown(
    meta: dict[str, Any], halves: dict[str, list[Question]], outcomes: Any, summaries: Summaries, catalogue: list[str]
) -> str:
    """The whole report."""
    lines = [
        "# Retrieval evaluation",
        "",
        f"{meta['date']}; embeddings `{meta['embedding_model']}`, reranker `{meta['reranker']}`, "
        f"{meta['chunks']} chunks of {meta['documents']} documents; retrieve_k {meta['retrieve_k']}, "
        f"rerank_top_n {meta['rerank_top_n']}, min_relevance {meta['min_relevance']}.",
        "",
        "Ranking metrics are computed with ranx on document ids over the in-catalogue questions, on every",
        "retrieved candidate (`retrieve_k` chunks after the `min_relevance` filter, de-duplicated by document);",
        "the prompt gets the first `rerank_top_n` chunks of that order. Without reranking it is the fusion (RRF)",
        "order. Out-of-catalogue questions count only for abstention: no chunk left after the filter.",
        "Each `+` row adds steps to dense retrieval; *full* has all three.",
    ]
    for half, questions in halves.items():
        by_config = outcomes[half]
        last = list(by_config)[-1]
        lines += ["", f"## {half} half ({len(questions)} questions)", "", *table(summaries[half])]
        lines += ["", f"### MRR@10 differences ({half}; paired bootstrap over questions, 95% CI)", ""]
        lines += ["| Comparison | Δ MRR@10 | 95% CI |", "|---|---:|---|"]
        lines += [f"| {k} | {d:+.3f} | [{lo:+.3f}, {hi:+.3f}] |" for k, (d, lo, hi) in comparisons(by_config).items()]
        lines += ["", f"### Misses ({half})", "", *misses(questions, by_config)]
        lines += [
            "",
            f"### Top hit per document ({half}, {last})",
            "",
            *coverage(questions, by_config[last], catalogue),
        ]
        lines += ["", f"### Abstention threshold ({half}, {last})", "", *thresholds(questions, by_config[last])]
    return "\n".join(lines) + "\n"


def plot(path: Path, summaries: Summaries) -> None:
    """Grouped bars: the metrics per configuration, one panel per half."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(7 * len(summaries), 4.5), squeeze=False)
    for ax, (half, rows) in zip(axes[0], summaries.items(), strict=True):
        width = 0.8 / len(rows)
        for i, (name, s) in enumerate(rows.items()):
            xs = [j + i * width for j in range(len(PLOTTED))]
            ax.bar(xs, [s[m] for m in PLOTTED], width, label=name)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(PLOTTED))], PLOTTED)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{half} half")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_all(
    out_dir: Path,
    meta: dict[str, Any],
    halves: dict[str, list[Question]],
    outcomes: Any,
    summaries: Summaries,
    catalogue: list[str],
) -> list[Path]:
    """Write ``result.json``, ``report.md`` and ``metrics.png`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "meta": meta,
        "summary": summaries,
        "mrr_differences": {h: comparisons(by_c) for h, by_c in outcomes.items()},
        "questions": {h: {c: [asdict(o) for o in os_] for c, os_ in by_c.items()} for h, by_c in outcomes.items()},
    }
    paths = [out_dir / "result.json", out_dir / "report.md", out_dir / "metrics.png"]
    paths[0].write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(markdown(meta, halves, outcomes, summaries, catalogue), encoding="utf-8")
    plot(paths[2], summaries)
    return paths


def save(out: Path, stem: str, result: dict[str, Any], md: str) -> None:
    """Write ``<stem>.json`` and ``<stem>.md`` under ``out`` and print the Markdown (answer and BEIR evals)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / f"{stem}.md").write_text(md, encoding="utf-8")
    print(md)
    print(f"report: {out / f'{stem}.md'}")
