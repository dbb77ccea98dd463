"""Query and guard encoders side by side, torch vs ONNX Runtime fp32 vs int8: ``python -m evals.bench_encoder``.

One run, the runtimes interleaved item by item (the load of a shared machine varies):

- the e5 query encoder: latency at batch 1 and batch 16 (p50/p95 over the questions of
  ``evals/data/questions_dev2.jsonl``, after a warm-up), the cosine of each runtime's vectors to torch's (min/mean,
  over every question of the evaluation files and the guard's dev rows), the intent model's decisions on them;
- the guard encoder (``INJECTION_ENCODER_PATH``): latency at batch 1, max |probability difference| to torch and
  the decisions at its threshold that agree with torch's, on the guard's dev rows (``evals.guard_eval --half dev``);
- retrieval (``evals.retrieval_eval``'s nodes and metrics) with the query embedder swapped, on the index that
  torch built (``make ingest``): MRR@10 and NDCG@10 per half, "dense only" and the service's "+ BM25 + expansion".

Needs ``make models ingest``. Prints the tables; ``--out`` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.embeddings import Embedder, make_embedder
from core.settings import ROOT, Settings, get_settings

RUNTIMES = ("torch", "onnx-fp32", "onnx-int8")
DATA = ROOT / "evals" / "data"
CONFIGS = ("dense only", "+ BM25 + expansion")
METRICS = ("MRR@10", "NDCG@10")


def _jsonl(path: Path, field: str) -> list[str]:
    return [json.loads(x)[field] for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def guard_texts() -> list[str]:
    """The guard's dev rows as the classifier sees them (after the rules' validation and sanitising)."""
    from evals.guard_eval import load_sets
    from guards.input import InvalidQuestionError, check_question

    out = []
    for rows in load_sets("dev").values():
        for r in rows:
            try:
                out.append(check_question(r["text"]).question)
            except InvalidQuestionError:
                continue
    return list(dict.fromkeys(out))


def timed(runs: dict[str, Callable[[Any], object]], items: Sequence[Any], warmup: int = 5) -> dict[str, Any]:
    """p50/p95 ms of each run over ``items``, the runs interleaved per item; the first ``warmup`` items untimed."""
    ms: dict[str, list[float]] = {name: [] for name in runs}
    for i, item in enumerate([*items[:warmup], *items]):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn(item)
            if i >= warmup:
                ms[name].append(1000 * (time.perf_counter() - t0))
    return {
        k: {"p50": round(float(np.median(v)), 2), "p95": round(float(np.percentile(v, 95)), 2)} for k, v in ms.items()
    }


def embedders(settings: Settings) -> dict[str, Embedder]:
    """The three query encoders of one local folder."""
    model = settings.embedding_model
    out: dict[str, Embedder] = {"torch": make_embedder("sentence-transformers", model)}
    for precision in ("fp32", "int8"):
        out[f"onnx-{precision}"] = make_embedder("onnx", model, onnx_precision=precision)
    names = {e.name for e in out.values()}
    assert len(names) == 1, f"the runtimes report different model identities: {names}"
    return out


def _batch_of_one(embedder: Embedder) -> Callable[[str], object]:
    return lambda q: embedder.embed_queries([q])


def bench_queries(embs: dict[str, Embedder], settings: Settings, texts: list[str]) -> dict[str, Any]:
    """Latency at batch 1 and 16, cosine to torch and the intent model's agreement."""
    from guards.classifier import embedding_model_id
    from guards.intent import IntentClassifier, IntentModelError

    questions = _jsonl(DATA / "questions_dev2.jsonl", "question")
    one = timed({k: _batch_of_one(e) for k, e in embs.items()}, questions)
    sixteen = timed(
        {k: e.embed_queries for k, e in embs.items()},
        [questions[i : i + 16] for i in range(0, len(questions) - 15, 4)],
        warmup=2,
    )
    vecs = {k: e.embed_queries(texts) for k, e in embs.items()}
    try:
        intent = IntentClassifier.load(settings.intent_model_path, embedding_model_id(embs["torch"].name))
        decide: dict[str, list[str]] = {
            k: [intent.decide(p).intent for p in intent.probabilities(v)] for k, v in vecs.items()
        }
    except IntentModelError:  # not built: no intent column
        decide = {k: [""] * len(texts) for k in vecs}
    out = {}
    for k, v in vecs.items():
        cos = (v * vecs["torch"]).sum(1)
        agree = sum(a == b for a, b in zip(decide[k], decide["torch"], strict=True))
        out[k] = {
            "batch1_ms": one[k],
            "batch16_ms": sixteen[k],
            "cos_min": float(cos.min()),
            "cos_mean": float(cos.mean()),
        }
        out[k] |= {"n_texts": len(texts), "intent_agree": agree}
    return out


def bench_guard(settings: Settings, texts: list[str]) -> dict[str, Any]:
    """The guard encoder per runtime: latency at batch 1, probabilities and decisions against torch's."""
    from guards.encoder_classifier import EncoderClassifier

    path = settings.injection_encoder_path
    clfs = {"torch": EncoderClassifier.load(path)}
    for precision in ("fp32", "int8"):
        clfs[f"onnx-{precision}"] = EncoderClassifier.load(path, "onnx", precision)  # type: ignore[arg-type]
    lat = timed({k: c.is_injection for k, c in clfs.items()}, texts[:80])
    probs = {k: np.array(c.predict_proba(texts)) for k, c in clfs.items()}
    thr = clfs["torch"].threshold
    out = {}
    for k, p in probs.items():
        flags, ref = p >= thr, probs["torch"] >= thr
        out[k] = {"batch1_ms": lat[k], "max_abs_diff": float(np.abs(p - probs["torch"]).max())}
        out[k] |= {"agree": int((flags == ref).sum()), "n": len(texts), "flagged": int(flags.sum()), "threshold": thr}
    return out


def bench_retrieval(embs: dict[str, Embedder], settings: Settings, halves: list[str]) -> dict[str, Any]:
    """MRR@10 / NDCG@10 per runtime, half and configuration, on the index torch built."""
    from core.resources import set_resources
    from evals import retrieval_eval as rev

    base = rev.build_resources(settings)  # torch's embedder, index, BM25
    questions = {h: rev.load_questions(rev.HALVES[h]) for h in halves}
    configs = tuple(c for c in rev.CONFIGS if c.name in CONFIGS)
    chunks = [h.text for h in base.store.all_chunks()]
    passages = chunks[:: max(1, len(chunks) // 64)][:64]  # how far int8 drifts on passages (ingest stays on torch)
    ref = embs["torch"].embed_passages(passages)
    out: dict[str, Any] = {"passages": {}}
    for k, emb in embs.items():
        cos = (emb.embed_passages(passages) * ref).sum(1)
        out["passages"][k] = {"n": len(passages), "cos_min": float(cos.min()), "cos_mean": float(cos.mean())}
        set_resources(dataclasses.replace(base, embedder=emb, batchers=None))
        outcomes = asyncio.run(rev.run_all(questions, configs, settings, settings.min_relevance))
        out[k] = {
            h: {c: {m: rev.score_half(questions[h], outcomes[h][c])[m] for m in METRICS} for c in outcomes[h]}
            for h in outcomes
        }
    set_resources(None)
    return out


def _table(head: Sequence[str], rows: list[Sequence[object]]) -> None:
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(f"{c:.4f}" if isinstance(c, float) else str(c) for c in row) + " |")


def _ms(t: dict[str, float]) -> tuple[str, str]:
    return f"{t['p50']:.1f}", f"{t['p95']:.1f}"


def print_tables(r: dict[str, Any]) -> None:
    """The side-by-side tables (Markdown)."""
    print(f"\nquery encoder ({r['meta']['queries_n']} texts for the cosine; load {r['meta']['load']})")
    rows: list[Sequence[object]] = [
        (
            k,
            *_ms(q["batch1_ms"]),
            *_ms(q["batch16_ms"]),
            q["cos_min"],
            q["cos_mean"],
            f"{q['intent_agree']}/{q['n_texts']}",
        )
        for k, q in r["queries"].items()
    ]
    _table(
        ("runtime", "b1 p50 ms", "b1 p95 ms", "b16 p50 ms", "b16 p95 ms", "cos min", "cos mean", "intent agree"), rows
    )
    if g := r.get("guard"):
        print(f"\nguard encoder (dev rows, threshold {next(iter(g.values()))['threshold']:.4f})")
        rows = [
            (k, *_ms(v["batch1_ms"]), v["max_abs_diff"], f"{v['agree']}/{v['n']}", v["flagged"]) for k, v in g.items()
        ]
        _table(("runtime", "b1 p50 ms", "b1 p95 ms", "max abs Δprob", "decisions agree", "flagged"), rows)
    if ret := dict(r.get("retrieval") or {}):
        print(f"\ncatalogue passages ({next(iter(ret['passages'].values()))['n']} chunks), cosine to torch")
        _table(
            ("runtime", "cos min", "cos mean"),
            [(k, v["cos_min"], v["cos_mean"]) for k, v in ret.pop("passages").items()],
        )
        print("\nretrieval (index built by torch)")
        rows = []
        for k, halves in ret.items():
            for h, cfgs in halves.items():
                for c, m in cfgs.items():
                    ref = ret["torch"][h][c]
                    rows.append((k, h, c, m["MRR@10"], m["NDCG@10"], *(f"{m[x] - ref[x]:+.4f}" for x in METRICS)))
        _table(("runtime", "half", "config", "MRR@10", "NDCG@10", "ΔMRR@10", "ΔNDCG@10"), rows)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m evals.bench_encoder", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    ap.add_argument("--halves", nargs="+", default=["dev", "test"], help="retrieval halves (evals.retrieval_eval)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["guard", "retrieval"], help="parts to leave out")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    texts = guard_texts()
    every = [*texts, *(q for h in ("dev", "dev2", "test") for q in _jsonl(DATA / f"questions_{h}.jsonl", "question"))]
    embs = embedders(settings)
    r: dict[str, Any] = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count()}}
    r["queries"] = bench_queries(embs, settings, list(dict.fromkeys(every)))
    r["meta"] |= {"queries_n": len(set(every)), "model": embs["torch"].name}
    if "guard" not in args.skip:
        r["guard"] = bench_guard(settings, texts)
    if "retrieval" not in args.skip:
        r["retrieval"] = bench_retrieval(embs, settings, args.halves)
    r["meta"]["load"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print_tables(r)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
