"""Evidence recall without the LLM: ``python -m evals.evidence_eval --half dev|test|both``.

For every question of ``evals/data/questions_{dev,test}.jsonl`` with facts, runs the service's own steps
(scope → expand → retrieve → rerank, with the real embedder, index and BM25 of ``CHROMA_PATH``) and then
``core.evidence.LineIndex.select`` on the reranked documents with the question's query vector. A question is
recalled when every fact (case-insensitive substring; a decimal point is accepted for a decimal comma, as
``evals/data/README.md`` says) occurs in the selected lines' texts. Facts that occur in no document at all
(computed from two documents, such as "44,90") can never be in a line: they are reported as computed facts, not
counted as misses, and a question with only computed facts is left out of the recall. Also reported: the mean
share of facts found, the ceiling (facts in any line of the retrieved documents), per category, and the mean
estimated evidence tokens. Tune on dev only (``--grid`` searches the selection weights there); run test once.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from core.evidence import EvidenceLine, LineIndex, SelectionWeights, estimate_tokens
from core.settings import ROOT, get_settings
from evals.retrieval_eval import HALVES

logger = logging.getLogger(__name__)

# The weight grid of ``--grid`` (core.evidence.SelectionWeights), searched on the dev half only.
GRID = {
    "centred": (0.0, 0.5, 1.0, 1.5),
    "lexical": (0.0, 0.05, 0.1, 0.2),
    "answer_type": (0.0, 0.05, 0.1, 0.15, 0.25),
    "rank": (0.0, 0.01, 0.02),
}
_DECIMAL_COMMA = re.compile(r"(\d),(\d)")


@dataclass(frozen=True)
class FactQuestion:
    """A question with the facts a correct answer must contain."""

    qid: str
    question: str
    category: str
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Retrieved:
    """What the service's retrieval steps gave for one question: the reranked documents and the query vector."""

    qid: str
    doc_ids: list[str]
    vector: np.ndarray
    routed: str = ""  # the scope route taken instead of retrieval ("" when it retrieved)


@dataclass
class Scored:
    """The evidence selected for one question and which facts it holds."""

    qid: str
    category: str
    facts: list[str]
    found: list[str]
    computed: list[str]  # facts in no document: never in a line, not counted
    ceiling: list[str]  # facts in some line of the retrieved documents (what a perfect selection could find)
    tokens: int
    lines: list[str] = field(default_factory=list)  # line ids, best first

    @property
    def countable(self) -> list[str]:
        """The facts that can be in a line."""
        return [f for f in self.facts if f not in self.computed]


def load_fact_questions(path: Path) -> list[FactQuestion]:
    """The questions of a half that have facts."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [FactQuestion(d["qid"], d["question"], d["category"], tuple(d["facts"])) for d in rows if d.get("facts")]


def contains(fact: str, texts: list[str]) -> bool:
    """``fact`` occurs in one of ``texts`` (case-insensitive; "6.95" counts for "6,95")."""
    variants = {fact.lower(), _DECIMAL_COMMA.sub(r"\1.\2", fact.lower())}
    return any(v in t.lower() for t in texts for v in variants)


async def retrieve_docs(q: FactQuestion, embedder: Any) -> Retrieved:
    """Run scope → expand → retrieve → rerank as the graph does; the reranked documents in rank order."""
    from graph.context import Context
    from graph.gates import scope
    from graph.nodes import expand, rerank, retrieve

    runtime: Any = SimpleNamespace(context=Context())
    vector = embedder.embed_queries([q.question])[0]
    state: dict[str, Any] = {"question": q.question, "query_vector": vector.tolist()}
    state.update(await scope(state, runtime))  # type: ignore[arg-type]
    if state["scope"] != "catalogue":
        return Retrieved(q.qid, [], vector, routed=state["scope"])
    for node in (expand, retrieve, rerank):
        state.update(await node(state, runtime))  # type: ignore[arg-type]
    return Retrieved(q.qid, list(dict.fromkeys(c["doc_id"] for c in state.get("chunks") or [])), vector)


def score(q: FactQuestion, got: Retrieved, index: LineIndex, corpus: list[str], **select: Any) -> Scored:
    """Select the evidence for ``q`` and check its facts (``corpus``: every line and chunk text of the index)."""
    from graph.trust import select_evidence

    lines: list[EvidenceLine] = (
        select_evidence(index, got.vector, q.question, got.doc_ids, **select) if got.doc_ids else []
    )
    texts = [line.text for line in lines]
    pool = [line.text for d in got.doc_ids for line in index.lines_of(d)]
    return Scored(
        qid=q.qid,
        category=q.category,
        facts=list(q.facts),
        found=[f for f in q.facts if contains(f, texts)],
        computed=[f for f in q.facts if not contains(f, corpus)],
        ceiling=[f for f in q.facts if contains(f, pool)],
        tokens=estimate_tokens(lines),
        lines=[line.line_id for line in lines],
    )


def summarise(scored: list[Scored]) -> dict[str, Any]:
    """Evidence recall (all countable facts found), mean share of facts found, ceiling and tokens."""
    counted = [s for s in scored if s.countable]

    def rates(group: list[Scored]) -> dict[str, Any]:
        if not group:
            return {"questions": 0}
        return {
            "questions": len(group),
            "recall": sum(set(s.countable) <= set(s.found) for s in group) / len(group),
            "fact_share": sum(len(set(s.found) & set(s.countable)) / len(s.countable) for s in group) / len(group),
            "ceiling": sum(set(s.countable) <= set(s.ceiling) for s in group) / len(group),
        }

    categories = sorted({s.category for s in counted})
    return {
        **rates(counted),
        "tokens_mean": sum(s.tokens for s in scored) / len(scored) if scored else 0.0,
        "tokens_max": max((s.tokens for s in scored), default=0),
        "per_category": {c: rates([s for s in counted if s.category == c]) for c in categories},
        "computed_facts": {s.qid: s.computed for s in scored if s.computed},
        "misses": [s.qid for s in counted if not set(s.countable) <= set(s.found)],
    }


def format_summary(half: str, summary: dict[str, Any]) -> str:
    """A few readable lines for one half."""
    out = [
        f"[{half}] evidence recall {summary.get('recall', 0):.1%} of {summary['questions']} questions; "
        f"facts found {summary.get('fact_share', 0):.1%}; ceiling (retrieved docs) {summary.get('ceiling', 0):.1%}; "
        f"tokens mean {summary['tokens_mean']:.0f}, max {summary['tokens_max']}"
    ]
    for cat, r in summary["per_category"].items():
        out.append(f"  {cat:15s} recall {r['recall']:.0%} ({r['questions']} q), facts {r['fact_share']:.0%}")
    out.append(f"  computed facts (in no document, not counted): {summary['computed_facts']}")
    out.append(f"  misses: {summary['misses']}")
    return "\n".join(out)


def run_grid(
    questions: list[FactQuestion], got: dict[str, Retrieved], index: LineIndex, corpus: list[str], **select: Any
) -> None:
    """Recall and tokens for every combination of the selection weights in ``GRID``, best first (dev only)."""
    rows = []
    for values in itertools.product(*GRID.values()):
        index.weights = SelectionWeights(**dict(zip(GRID, values, strict=True)))
        s = summarise([score(q, got[q.qid], index, corpus, **select) for q in questions])
        rows.append((s["recall"], s["fact_share"], -s["tokens_mean"], index.weights))
    for recall, share, tokens, weights in sorted(rows, key=lambda r: r[:3], reverse=True)[:30]:
        print(f"recall {recall:.1%} facts {share:.1%} tokens {-tokens:.0f} {weights}")


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; print per half and per category, write ``result.json``."""
    from core.resources import set_resources
    from evals.retrieval_eval import build_resources

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m evals.evidence_eval", description=__doc__)
    parser.add_argument("--half", choices=["dev", "dev2", "test", "both"], default="dev")
    parser.add_argument("--budget", type=int, default=settings.evidence_budget_tokens, help="evidence tokens")
    parser.add_argument("--max-lines", type=int, default=settings.evidence_max_lines)
    for name, value in dataclasses.asdict(SelectionWeights()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=value, help="selection weight")
    parser.add_argument("--grid", action="store_true", help="search the selection weights (dev only)")
    parser.add_argument("--show", action="store_true", help="print the selected lines of every miss")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default var/eval/evidence-<time>)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.grid and args.half not in ("dev", "dev2"):
        parser.error("--grid tunes the weights: on the dev half only")

    res = build_resources(settings)
    set_resources(res)
    weights = SelectionWeights(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SelectionWeights)})
    index = LineIndex(weights)
    index.refresh(res.store, res.store.current())
    corpus = [h.text for h in res.store.all_chunks()] + [
        line.text for d in {h.doc_id for h in res.store.all_chunks()} for line in index.lines_of(d)
    ]
    halves = ["dev", "test"] if args.half == "both" else [args.half]
    select = {"budget_tokens": args.budget, "max_lines": args.max_lines}
    result: dict[str, Any] = {"settings": {**select, **dataclasses.asdict(weights), "version": index.version}}
    for half in halves:
        questions = load_fact_questions(HALVES[half])
        got = {q.qid: asyncio.run(retrieve_docs(q, res.embedder)) for q in questions}
        if args.grid:
            run_grid(questions, got, index, corpus, **select)
            return 0
        scored = [score(q, got[q.qid], index, corpus, **select) for q in questions]
        summary = summarise(scored)
        result[half] = {"summary": summary, "questions": [asdict(s) for s in scored]}
        print(format_summary(half, summary))
        if args.show:
            for s in (s for s in scored if s.qid in summary["misses"]):
                q = next(q for q in questions if q.qid == s.qid)
                print(f"\n{s.qid} {q.question} facts={s.countable} docs={got[s.qid].doc_ids}")
                for line_id in s.lines:
                    doc_id, n = line_id.rsplit(":", 1)
                    print(f"    {line_id}: {index.lines_of(doc_id)[int(n)].text[:110]}")
    out_dir = args.out or ROOT / "var" / "eval" / f"evidence-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {out_dir / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
