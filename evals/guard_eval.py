"""Guard precision: attacks refused, customers not: ``python -m evals.guard_eval [--half dev|test|all]``.

Runs the service's own graph nodes up to the prompt (guard → scope → … → evidence → prompt: rules, injection
classifier, scope rules, intent model, and the abstention on weak evidence; no LLM call) with the real resources
(e5, the trained models, the ingested index), one message at a time, and reports per set and category:

- ``attack``: refused as an attack (a strike); for attack sets this is detection, for everything else a false
  refusal;
- ``service`` / ``off_topic`` / ``abstained`` / ``answered``: where a non-attack message went (``abstained``: the
  evidence was too weak, the route to customer service; ``answered``: on to the LLM; a ``mixed`` message is
  answered with the route appended);
- for service requests, whether the route's reason matches the label.

Sets: the frozen customer-traffic test set (``evals/data/customer_traffic_test.jsonl``, ``--half test``), the dev
rows of ``guards/data/customer_traffic.jsonl`` (``--half dev``), the held-out attack rows of ``guards/data``,
``evals/data/jailbreaks.jsonl``, the security suite's benign questions and the in-catalogue questions of the
evaluation halves (which must be answered, not routed). Wilson 95 % intervals. Needs ``make models ingest``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import ROOT
from evals.answer_metrics import wilson

DATA = ROOT / "evals" / "data"
GUARD_DATA = ROOT / "guards" / "data"
DEFAULT_OUT = ROOT / "var" / "reports" / "guard_eval.json"
Row = dict[str, Any]


def _jsonl(path: Path) -> list[Row]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()] if path.is_file() else []


def load_sets(half: str) -> dict[str, list[Row]]:
    """Each set's rows as {text, kind, want, reason}; ``want`` is attack, service, off_topic, answered or mixed."""
    sets: dict[str, list[Row]] = {}

    def traffic(rows: Iterable[Row]) -> list[Row]:
        out = []
        for r in rows:
            want = "mixed" if r.get("mixed") else {"question": "answered"}.get(r["intent"], r["intent"])
            out.append({"text": r["text"], "kind": f"{r['kind']}/{r['lang']}", "want": want, "reason": r["reason"]})
        return out

    if half in ("test", "all"):
        sets["customer_test"] = traffic(_jsonl(DATA / "customer_traffic_test.jsonl"))
    if half in ("dev", "all"):
        rows = [r for r in _jsonl(GUARD_DATA / "customer_traffic.jsonl") if r.get("split") == "dev"]
        sets["customer_dev"] = traffic(rows)
    files = [p for p in sorted(GUARD_DATA.glob("*.jsonl")) if not p.name.startswith("leak_")]  # questions only
    attacks = [r for p in files for r in _jsonl(p) if r.get("label") == 1]
    sets["attacks_heldout"] = [
        {"text": r["text"], "kind": r["kind"], "want": "attack", "reason": None}
        for r in attacks
        if r.get("split") == "eval"
    ]
    sets["jailbreaks"] = [
        {"text": r["text"], "kind": r["kind"], "want": "attack", "reason": None}
        for r in _jsonl(DATA / "jailbreaks.jsonl")
    ]
    sets["security_benign"] = [
        {"text": r["text"], "kind": r.get("kind", "benign"), "want": "answered", "reason": None}
        for r in _jsonl(DATA / "security_benign.jsonl")
    ]
    for name, in_half in (("dev", "dev"), ("dev2", "dev"), ("test", "test")):
        if half in (in_half, "all"):
            sets[f"questions_{name}"] = [
                {"text": r["question"], "kind": r["category"], "want": "answered", "reason": None}
                for r in _jsonl(DATA / f"questions_{name}.jsonl")
                if r.get("category") != "out_of_catalogue"
            ]
    return {k: v for k, v in sets.items() if v}


def outcome(out: Row) -> str:
    """What the guard and scope nodes decided: attack, service, off_topic, answered or mixed."""
    if out.get("refused"):
        return "attack"
    scope = out.get("scope", "catalogue")
    if scope in ("service", "order"):
        return "service"
    if scope in ("off_topic", "other_species"):
        return "off_topic"
    if scope == "unknown_variant" or out.get("mode") == "abstained":
        return "abstained"  # the route to customer service too, after a search (weak evidence)
    return "mixed" if out.get("route_note") else "answered"


async def run(sets: dict[str, list[Row]]) -> dict[str, Any]:
    """Every message through guard → scope; the decisions and the guard+scope time per message."""
    from langgraph.graph import END, START, StateGraph

    from core import requestctx
    from core.resources import get_resources
    from graph import gates, nodes, trust
    from graph.context import Context
    from graph.state import State

    builder = StateGraph(State, context_schema=Context)  # the service's graph up to the prompt: no LLM call
    steps = {"guard": gates.guard, "scope": gates.scope, "expand": nodes.expand, "retrieve": nodes.retrieve}
    steps |= {"rerank": nodes.rerank, "evidence": trust.evidence, "prompt": nodes.prompt}
    for name, node in steps.items():
        builder.add_node(name, node)  # type: ignore[arg-type]
    builder.add_edge(START, "guard")
    builder.add_conditional_edges("guard", gates.route_after_guard, {"scope": "scope", END: END})
    builder.add_conditional_edges("scope", gates.route_after_scope, {"expand": "expand", END: END})
    for a, b in (("expand", "retrieve"), ("retrieve", "rerank"), ("rerank", "evidence"), ("evidence", "prompt")):
        builder.add_edge(a, b)
    builder.add_edge("prompt", END)
    mini = builder.compile()
    get_resources()
    await mini.ainvoke({"question": "Wat kost de verzending?"})  # warm-up
    results: dict[str, Any] = {}
    for name, rows in sets.items():
        seconds, decided = [], []
        for row in rows:
            record: dict[str, Any] = {}
            token = requestctx.begin(record)
            try:
                t0 = time.perf_counter()
                out = await mini.ainvoke({"question": row["text"]})
                seconds.append(time.perf_counter() - t0)
            finally:
                requestctx.end(token)
            route = record.get("routed") or {}
            decided.append({**row, "got": outcome(out), "got_reason": route.get("reason")})
        results[name] = {"rows": decided, "ms": np.percentile(np.array(seconds) * 1000, [50, 95]).round(1).tolist()}
        print(f"[guard_eval] {name}: {len(rows)} messages", flush=True)
    return results


def _rate(k: int, n: int) -> str:
    ci = wilson(k, n)
    return f"{k}/{n} = {k / n:.1%} [{ci[0]:.1%}, {ci[1]:.1%}]" if n and ci else "-"


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Per set: attack refusals, correct routes, reason accuracy, by category too."""
    summary: dict[str, Any] = {}
    for name, res in results.items():
        rows = res["rows"]
        by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        for r in rows:
            by_kind[r["kind"]][r["got"]] += 1
        attacks = [r for r in rows if r["want"] == "attack"]
        benign = [r for r in rows if r["want"] != "attack"]
        service = [r for r in rows if r["want"] == "service"]
        correct = sum(r["got"] == r["want"] for r in rows)
        summary[name] = {
            "n": len(rows),
            "detection": _rate(sum(r["got"] == "attack" for r in attacks), len(attacks)) if attacks else None,
            "refused_as_attack": _rate(sum(r["got"] == "attack" for r in benign), len(benign)) if benign else None,
            "correct_route": _rate(correct, len(rows)),
            "service_routed": _rate(sum(r["got"] == "service" for r in service), len(service)) if service else None,
            "service_routed_or_abstained": _rate(
                sum(r["got"] in ("service", "abstained") for r in service), len(service)
            )
            if service
            else None,
            "reason_correct": _rate(
                sum(r["got_reason"] == r["reason"] for r in service if r["got"] == "service"),
                sum(r["got"] == "service" for r in service),
            )
            if service
            else None,
            "guard_scope_ms_p50_p95": res["ms"],
            "by_category": {k: dict(v) for k, v in sorted(by_kind.items())},
            "misses": [
                {"text": r["text"][:120], "want": r["want"], "got": r["got"]}
                for r in rows
                if r["got"] != r["want"] and (r["want"] == "attack" or r["got"] == "attack")
            ][:40],
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description="Guard precision: attacks refused, customers routed or answered.")
    ap.add_argument("--half", choices=("dev", "test", "all"), default="dev", help="customer traffic and questions")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    summary = summarise(asyncio.run(run(load_sets(args.half))))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, s in summary.items():
        print(f"\n== {name} (n={s['n']}, guard+scope p50/p95 {s['guard_scope_ms_p50_p95']} ms)")
        keys = ("detection", "refused_as_attack", "correct_route", "service_routed", "service_routed_or_abstained")
        for key in (*keys, "reason_correct"):
            if s[key]:
                print(f"  {key:<18} {s[key]}")
        for kind, counts in s["by_category"].items():
            print(f"    {kind:<28} {dict(counts)}")
        for miss in s["misses"][:15]:
            print(f"    ! want {miss['want']:<9} got {miss['got']:<9} {miss['text']}")
    print(f"\nreport: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
