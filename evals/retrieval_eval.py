"""Retrieval evaluation over the demo catalogue: ``python -m evals.retrieval_eval`` (``make eval``).

Runs the graph's retrieval nodes (scope → expand → retrieve → rerank; no guard, no LLM) for every question of
``evals/data/questions_{dev,test}.jsonl`` under each ablation configuration, against the real index
(``CHROMA_PATH``, built by ``make ingest``). Rankings are scored on document ids (chunks de-duplicated, best
rank kept) with ``evals.metrics``, over every retrieved candidate (``RETRIEVE_K`` chunks, in the fusion or
rerank order), as ranking metrics are defined; the prompt gets the first ``RERANK_TOP_N`` of them, so
MRR, P@1 and Hit@3 are those of the prompt's order too; out-of-catalogue questions are scored on
abstention instead (routed to customer service by ``scope``, or no chunk left after the ``min_relevance``
filter). Writes ``result.json``,
``report.md`` and ``metrics.png`` under ``var/eval/<timestamp>/`` and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tqdm import tqdm

from core.settings import ROOT, Settings, get_settings
from evals.metrics import CATALOGUE_METRICS, evaluate

logger = logging.getLogger(__name__)

DATA = ROOT / "evals" / "data"
HALVES = {
    "test": DATA / "questions_test.jsonl",
    "dev": DATA / "questions_dev.jsonl",
    "dev2": DATA / "questions_dev2.jsonl",  # a second, larger dev set (session 10), for tuning only
}
# The catalogue metrics plus MRR counting only the primary (grade 2) documents as relevant.
METRICS = {**CATALOGUE_METRICS, "MRR@10 (grade 2)": "mrr@10-l2"}


@dataclass(frozen=True)
class Config:
    """One row of the ablation table: which retrieval steps are on."""

    name: str
    bm25: bool
    expansion: bool
    rerank: bool


CONFIGS = (
    Config("dense only", bm25=False, expansion=False, rerank=False),
    Config("+ BM25", bm25=True, expansion=False, rerank=False),
    Config("+ expansion", bm25=False, expansion=True, rerank=False),
    Config("+ rerank", bm25=False, expansion=False, rerank=True),
    Config("+ BM25 + expansion", bm25=True, expansion=True, rerank=False),  # full without reranking
    Config("full", bm25=True, expansion=True, rerank=True),
)


@dataclass(frozen=True)
class Question:
    """One evaluation question (see evals/data/README.md)."""

    qid: str
    question: str
    lang: str
    category: str
    relevant: dict[str, int]


@dataclass
class Outcome:
    """What the retrieval returned for one question under one configuration."""

    qid: str
    docs: list[str]  # document ids in rank order: every retrieved candidate (``retrieve_k`` chunks), de-duplicated
    top_score: float | None  # best dense (cosine) score among the candidates
    abstained: bool
    ms: float
    metrics: dict[str, float] = field(default_factory=dict)
    prompt_docs: list[str] = field(default_factory=list)  # the documents of the ``rerank_top_n`` chunks the prompt gets
    routed: str = ""  # the fixed route chains.scope took instead of retrieval ("" when it retrieved)


def load_questions(path: Path) -> list[Question]:
    """Read a questions JSONL file."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(Question(d["qid"], d["question"], d["lang"], d["category"], dict(d["relevant"])))
    return out


def build_resources(settings: Settings) -> Any:
    """Embedder, index, reranker and BM25 as the service builds them; no LLM unless expansion asks the LLM."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    from core.embeddings import make_embedder
    from core.lexical import LexicalIndex
    from core.reranker import make_reranker, reranker_kwargs
    from core.resources import Resources, make_llm
    from core.vectorstore import VectorStore, open_client

    embedder = make_embedder(
        settings.embedding_provider,
        settings.embedding_model,
        settings.embedding_device,
        settings.embedding_onnx_precision,
    )
    store = VectorStore(
        open_client(settings.chroma_path, settings.chroma_url), settings.chroma_collection, embedder.name
    )
    embedder.embed_queries(["warm-up"])
    return Resources(
        embedder=embedder,
        reranker=make_reranker(**reranker_kwargs(settings)),
        store=store,
        # The retrieval eval never generates; only EXPANSION_PROVIDER=llm calls the real LLM (for its rephrasings).
        llm=make_llm(settings) if settings.expansion_provider == "llm" else GenericFakeChatModel(messages=iter([])),
        lexical=LexicalIndex.from_store(store),
    )


async def run_question(q: Question, cfg: Config, settings: Settings, min_relevance: float) -> Outcome:
    """Scope → expand → retrieve → rerank (or, with reranking off, the fusion order under the same filter and cut).

    A question that ``scope`` routes to customer service (an order's status, another animal) retrieves nothing:
    it counts as an abstention.
    """
    from graph.context import Context
    from graph.gates import scope
    from graph.nodes import expand, rerank, retrieve

    ctx = Context(hybrid_bm25=cfg.bm25, expand_queries=cfg.expansion, min_relevance=min_relevance)
    runtime: Any = SimpleNamespace(context=ctx)
    state: dict[str, Any] = {"question": q.question, "language": q.lang}
    t0 = time.perf_counter()
    state.update(await scope(state, runtime))  # type: ignore[arg-type]
    if state["scope"] != "catalogue":
        return Outcome(q.qid, [], None, True, (time.perf_counter() - t0) * 1000, routed=state["scope"])
    state.update(await expand(state, runtime))  # type: ignore[arg-type]
    state.update(await retrieve(state, runtime))  # type: ignore[arg-type]
    candidates = state.get("candidates") or []
    if cfg.rerank:  # the rerank node's order over every candidate; the prompt would get its first rerank_top_n
        whole = SimpleNamespace(context=dataclasses.replace(ctx, rerank_top_n=max(1, len(candidates))))
        ranked = (await rerank(state, whole))["chunks"]  # type: ignore[arg-type]
    else:
        ranked = [c for c in candidates if c["score"] >= min_relevance]
    chunks = ranked[: ctx.rerank_top_n]
    ms = (time.perf_counter() - t0) * 1000
    top = max((c["score"] for c in candidates), default=None)
    docs = list(dict.fromkeys(c["doc_id"] for c in ranked))
    return Outcome(q.qid, docs, top, not chunks, ms, prompt_docs=list(dict.fromkeys(c["doc_id"] for c in chunks)))


def score_half(questions: list[Question], outcomes: list[Outcome]) -> dict[str, Any]:
    """Ranking metrics on the in-catalogue questions, abstention on the others, per-question details."""
    from evals.metrics import scores_from_ranking

    by_qid = {o.qid: o for o in outcomes}
    ranked = [q for q in questions if q.relevant]
    ooc = [q for q in questions if not q.relevant]
    result = evaluate(
        {q.qid: q.relevant for q in ranked}, {q.qid: scores_from_ranking(by_qid[q.qid].docs) for q in ranked}, METRICS
    )
    for qid, m in result.per_query.items():
        by_qid[qid].metrics = m
    answered = [by_qid[q.qid] for q in ranked]
    summary: dict[str, Any] = dict(result.mean)
    summary["Abstention (OOC)"] = sum(by_qid[q.qid].abstained for q in ooc) / len(ooc) if ooc else None
    summary["False abstention"] = sum(o.abstained for o in answered) / len(answered) if answered else None
    summary["Top-hit docs"] = len({o.docs[0] for o in answered if o.docs})
    summary["ms/q (mean)"] = sum(o.ms for o in outcomes) / len(outcomes)
    return summary


async def run_all(
    halves: dict[str, list[Question]], configs: tuple[Config, ...], settings: Settings, min_relevance: float
) -> dict[str, dict[str, list[Outcome]]]:
    """Every question of every half under every configuration, with a progress bar."""
    out: dict[str, dict[str, list[Outcome]]] = {h: {c.name: [] for c in configs} for h in halves}
    total = sum(len(qs) for qs in halves.values()) * len(configs)
    with tqdm(total=total, desc="eval", unit="q") as bar:
        for half, questions in halves.items():
            for cfg in configs:
                for q in questions:
                    out[half][cfg.name].append(await run_question(q, cfg, settings, min_relevance))
                    bar.update()
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; write the JSON result, the Markdown report and the plot; print the table."""
    from core.resources import set_resources
    from evals import eval_report

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m evals.retrieval_eval", description=__doc__)
    parser.add_argument("--halves", nargs="+", choices=sorted(HALVES), default=["test", "dev"])
    parser.add_argument("--configs", nargs="+", choices=[c.name for c in CONFIGS], default=[c.name for c in CONFIGS])
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions of each half (smoke runs)")
    parser.add_argument("--min-relevance", type=float, default=settings.min_relevance, help="abstention threshold")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default var/eval/<timestamp>)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    halves = {h: load_questions(HALVES[h]) for h in args.halves}
    if args.limit:
        halves = {h: qs[: args.limit] for h, qs in halves.items()}
    configs = tuple(c for c in CONFIGS if c.name in args.configs)
    out_dir = args.out or ROOT / "var" / "eval" / time.strftime("%Y%m%d-%H%M%S")

    res = build_resources(settings)
    set_resources(res)
    catalogue = sorted({h.doc_id for h in res.store.all_chunks()})
    outcomes = asyncio.run(run_all(halves, configs, settings, args.min_relevance))
    summaries = {h: {c: score_half(halves[h], outcomes[h][c]) for c in outcomes[h]} for h in outcomes}
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "embedding_model": res.embedder.name,
        "reranker": res.reranker.name,
        "chunks": res.store.count(),
        "documents": len(catalogue),
        "retrieve_k": settings.retrieve_k,
        "rerank_top_n": settings.rerank_top_n,
        "min_relevance": args.min_relevance,
        "configs": [asdict(c) for c in configs],
    }
    paths = eval_report.write_all(out_dir, meta, halves, outcomes, summaries, catalogue)
    print(eval_report.format_tables(summaries))
    print("\n".join(f"wrote {p}" for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
