"""The shop's retrieval pipeline on a public benchmark: ``python -m evals.beir_eval [FOLDER]`` (``make eval-beir``).

Any BEIR-format folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``); the default is SciFact
in ``../shared/data/beir/scifact``. The pipeline's own parts: the configured embedder (e5 ``query: `` /
``passage: `` prefixes), ``core.lexical.LexicalIndex`` (BM25), ``core.fusion.reciprocal_rank_fusion``, and
the configured reranker over the fused top 10. Dense search is exact cosine over the cached vectors (the
service's Chroma HNSW is approximate; at 5k documents exact search is the fair upper bound).

Embedding the corpus is the expensive part (SciFact with e5-small on 2 CPU cores: ~0.2 s per abstract), so
the vectors are cached once per corpus and model under ``.cache/beir/`` and reused; a progress bar shows
the ETA. Nothing is tuned on the test queries. Writes ``beir.json`` + ``beir.md`` under ``var/eval/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.embeddings import Embedder, make_embedder
from core.fusion import reciprocal_rank_fusion
from core.lexical import LexicalIndex
from core.reranker import make_reranker, reranker_kwargs
from core.settings import ROOT, get_settings
from core.vectorstore import Hit
from evals.eval_report import save
from evals.metrics import BEIR_METRICS, evaluate, read_trec_qrels

logger = logging.getLogger(__name__)

DEFAULT_FOLDER = ROOT.parent / "shared" / "data" / "beir" / "scifact"
CACHE = ROOT / ".cache" / "beir"
CONFIGS = ("bm25", "dense", "fusion", "fusion+rerank")
DEPTH, RERANK_TOP = 100, 10
BATCH = 16
PART = 128  # documents per cache file: what an interrupted run loses at most


def load_beir(
    folder: Path, max_queries: int | None = None, max_docs: int | None = None
) -> tuple[list[Hit], dict[str, str], dict[str, dict[str, int]]]:
    """Corpus (as ``Hit``s), test queries with judgements, and their qrels (first ``max_queries`` only).

    ``max_docs`` (subset runs, tests): the judged documents of the kept queries plus the first others.
    """
    corpus = []
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            text = f"{d.get('title', '')}. {d.get('text', '')}".strip(". ")
            corpus.append(
                Hit(chunk_id=d["_id"], doc_id=d["_id"], title=d.get("title", ""), text=text, score=0.0, metadata={})
            )
    qrels = read_trec_qrels(folder / "qrels" / "test.tsv")
    queries = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    keep = sorted(queries, key=lambda q: int(q) if q.isdigit() else q)[:max_queries]
    if max_docs is not None:
        judged = {d for q in keep for d in qrels[q]}
        others = [h for h in corpus if h.doc_id not in judged][: max(0, max_docs - len(judged))]
        corpus = [h for h in corpus if h.doc_id in judged] + others
    return corpus, {q: queries[q] for q in keep}, {q: qrels[q] for q in keep}


def corpus_vectors(corpus: Sequence[Hit], embedder: Embedder, folder: Path) -> np.ndarray:
    """Passage vectors of ``corpus``, cached per corpus and model; an interrupted run resumes where it stopped.

    Vectors are saved in parts of ``PART`` documents under ``.cache/beir/<corpus>-<key>/`` as they are made,
    and joined into ``vectors.npy`` once complete.
    """
    key = hashlib.sha256((embedder.name + "\n" + "\n".join(h.chunk_id for h in corpus)).encode()).hexdigest()[:16]
    cache = CACHE / f"{folder.name}-{key}"
    done = cache / "vectors.npy"
    if done.exists():
        return np.load(done)
    cache.mkdir(parents=True, exist_ok=True)
    starts = range(0, len(corpus), PART)
    todo = [i for i in starts if not (cache / f"part-{i:07d}.npy").exists()]
    if len(todo) < len(starts):
        logger.info("resuming: %d of %d parts already embedded", len(starts) - len(todo), len(starts))
    with tqdm(total=len(todo) * PART, desc=f"embedding {folder.name}", unit="doc") as bar:
        for i in todo:
            texts = [h.text for h in corpus[i : i + PART]]
            part = np.concatenate([embedder.embed_passages(texts[j : j + BATCH]) for j in range(0, len(texts), BATCH)])
            np.save(cache / f"part-{i:07d}.npy", part.astype(np.float32))
            bar.update(len(texts))
    vectors = np.concatenate([np.load(cache / f"part-{i:07d}.npy") for i in starts]).astype(np.float32)
    np.save(done, vectors)
    return vectors


def retrieve(
    config: str,
    query: str,
    qvec: np.ndarray,
    corpus: Sequence[Hit],
    vectors: np.ndarray,
    bm25: LexicalIndex,
    reranker: Any,
) -> list[str]:
    """Doc ids, best first, for one configuration."""
    if config == "bm25":
        return [h.doc_id for h in bm25.search(query, DEPTH)]
    sims = vectors @ qvec
    top = np.argsort(-sims)[:DEPTH]
    dense = [
        Hit(
            chunk_id=corpus[i].chunk_id,
            doc_id=corpus[i].doc_id,
            title="",
            text=corpus[i].text,
            score=float(sims[i]),
            metadata={},
        )
        for i in top
    ]
    if config == "dense":
        return [h.doc_id for h in dense]
    pairs = reciprocal_rank_fusion([dense, bm25.search(query, DEPTH)])[:DEPTH]
    fused = [h for h, _ in pairs]
    if config == "fusion":
        return [h.doc_id for h in fused]
    head = fused[:RERANK_TOP]
    best = pairs[0][1] or 1.0
    prior = [rrf / best for _, rrf in pairs[:RERANK_TOP]]  # the fusion order, as the graph's rerank node passes it
    scores = reranker.score(query, [h.text for h in head], prior)
    order = [h for _, h in sorted(zip(scores, head, strict=True), key=lambda p: -p[0])]
    return [h.doc_id for h in order] + [h.doc_id for h in fused[RERANK_TOP:]]


def run(folder: Path, max_queries: int | None, max_docs: int | None = None) -> dict[str, Any]:
    """Evaluate every configuration; time per query is measured per configuration (embedding included)."""
    settings = get_settings()
    corpus, queries, qrels = load_beir(folder, max_queries, max_docs)
    embedder = make_embedder(
        settings.embedding_provider,
        settings.embedding_model,
        settings.embedding_device,
        settings.embedding_onnx_precision,
    )
    reranker = make_reranker(**reranker_kwargs(settings))
    vectors = corpus_vectors(corpus, embedder, folder)
    bm25 = LexicalIndex(corpus)
    results: dict[str, Any] = {}
    for config in CONFIGS:
        runs: dict[str, dict[str, float]] = {}
        times = []
        for qid, text in tqdm(queries.items(), desc=config, unit="q"):
            t0 = time.perf_counter()
            qvec = embedder.embed_queries([text])[0] if config != "bm25" else np.zeros(1)
            ranked = retrieve(config, text, qvec, corpus, vectors, bm25, reranker)
            times.append(time.perf_counter() - t0)
            runs[qid] = {d: float(len(ranked) - i) for i, d in enumerate(dict.fromkeys(ranked))}
        metrics = evaluate(qrels, runs, BEIR_METRICS).mean
        results[config] = {
            **metrics,
            "ms_p50": 1000 * float(np.percentile(times, 50)),
            "ms_p95": 1000 * float(np.percentile(times, 95)),
        }
    return {
        "folder": str(folder),
        "documents": len(corpus),
        "queries": len(queries),
        "embedder": embedder.name,
        "reranker": reranker.name,
        "results": results,
    }


def markdown(result: dict[str, Any]) -> str:
    """The table."""
    lines = [
        f"# BEIR: {Path(result['folder']).name} ({result['documents']} documents, {result['queries']} test queries)",
        "",
        f"Embedder `{result['embedder']}`, reranker `{result['reranker']}` (top {RERANK_TOP} of the fusion).",
        "",
        "| configuration | nDCG@10 | MRR@10 | Recall@100 | ms/query P50 | P95 |",
        "|---|---|---|---|---|---|",
    ]
    for config, r in result["results"].items():
        lines.append(
            f"| {config} | {r['NDCG@10']:.3f} | {r['MRR@10']:.3f} | {r['Recall@100']:.3f} "
            f"| {r['ms_p50']:.1f} | {r['ms_p95']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run on a BEIR folder and print the table."""
    p = argparse.ArgumentParser(prog="python -m evals.beir_eval", description=__doc__)
    p.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    p.add_argument("--max-queries", type=int, help="only the first N test queries (smoke runs)")
    p.add_argument("--max-docs", type=int, help="a corpus subset: the judged documents plus the first others")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not (args.folder / "corpus.jsonl").is_file():
        print(f"error: {args.folder} is not a BEIR folder (corpus.jsonl missing)")
        return 2
    result = run(args.folder, args.max_queries, args.max_docs)
    out = args.out or ROOT / "var" / "eval" / f"beir-{args.folder.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    save(out, "beir", result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
