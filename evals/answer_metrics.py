"""Scoring of one answer and the summaries over a half, a category or a mode (``evals.answer_eval``).

Per answer (``score``), from the graph's output ``{answer, sources, refused, language, mode, evidence}`` and
the service's ``prompt_tokens``:

- **correct**: every fact of the question is in the answer (case-insensitive substring; a fact with a decimal
  comma also matches with a point, as ``evals/data/README.md`` asks); ``facts_found`` is the share found;
- **unsupported**: the answer states a number or product name its cited documents do not support
  (``evals.claim_diff``; an independent diff, not the service's own check);
- **citations supported**: every cited source is a relevant document. An in-catalogue answer without
  sources is unsupported, unless it abstained, was refused or took a fixed route (then not counted);
- **abstained** (out of catalogue): an abstaining mode, or no sources and a route to customer service;
- **false abstention** (in the catalogue): the answer abstained or took a fixed route;
- **evidence recall** (in the catalogue): every fact is in the texts of the lines the prompt was given;
- **language**: the answer is in the question's language.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable
from typing import Any

from chains.language import detect_language
from evals.claim_diff import Catalogue, diff_claims, load_catalogue

MODES = ("generated", "extractive", "abstained", "refused", "order", "other_species", "unknown_variant")
SCOPE_ROUTES = frozenset({"order", "other_species", "unknown_variant"})  # chains.scope: fixed answers, no search
ABSTAINING = SCOPE_ROUTES | {"abstained"}
UNCITED_OK = ABSTAINING | {"refused"}  # modes whose answer has no sources by design
ROUTE = re.compile(r"klantenservice|customer service|klantendienst", re.IGNORECASE)
Z95 = 1.959963984540054


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def fact_found(fact: str, text: str) -> bool:
    """``fact`` in ``text``: case- and space-insensitive substring; ``4,95`` also matches ``4.95``."""
    haystack = _norm(text)
    needle = _norm(fact)
    return needle in haystack or ("," in needle and needle.replace(",", ".") in haystack)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``k`` successes in ``n`` trials (95 % by default); ``None`` when ``n`` is 0."""
    if n <= 0:
        return None
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def answer_mode(out: dict[str, Any]) -> str:
    """The answer's outcome as the graph reports it (``unset`` from a graph that does not say)."""
    return str(out.get("mode") or ("refused" if out.get("refused") else "unset"))


def score(item: dict[str, Any], out: dict[str, Any], catalogue: Catalogue | None = None) -> dict[str, Any]:
    """The metrics of one answer."""
    answer = str(out.get("answer") or "")
    cited = [str(s["id"]) for s in out.get("sources") or [] if s.get("id")]
    mode = answer_mode(out)
    relevant = item.get("relevant") or {}
    facts = item.get("facts") or []
    claims = diff_claims(answer, cited, catalogue or load_catalogue(), question=str(item.get("question") or ""))
    tokens = out.get("prompt_tokens")
    row: dict[str, Any] = {
        "qid": item["qid"],
        "category": item.get("category") or "?",
        "question": item.get("question"),
        "answer": answer,
        "sources": cited,
        "mode": mode,
        "refused": bool(out.get("refused")),
        "language_ok": detect_language(answer) == item.get("lang", "nl") if answer else False,
        "prompt_tokens": int(tokens) if isinstance(tokens, int | float) else None,
        "numbers": claims.numbers,
        "products": claims.products,
        "unsupported_claims": claims.unsupported,
        "unsupported": not claims.ok,
    }
    if relevant:
        found = [f for f in facts if fact_found(f, answer)]
        row["correct"] = bool(facts) and len(found) == len(facts)
        row["facts_found"] = len(found) / len(facts) if facts else None
        if cited:
            row["citations_supported"] = all(c in relevant for c in cited)
        else:
            row["citations_supported"] = None if mode in UNCITED_OK else False
        row["false_abstention"] = mode in ABSTAINING
        evidence = out.get("evidence")
        if facts and (evidence is not None or "mode" in out):  # a graph without evidence: not measured
            lines = "\n".join(str(e.get("text") or "") for e in evidence or [])
            row["evidence_recall"] = all(fact_found(f, lines) for f in facts)
        else:
            row["evidence_recall"] = None
    elif item.get("category") != "benign":  # benign (security suite): neither in nor out of the catalogue, by design
        row["abstained"] = mode in ABSTAINING or (not cited and bool(ROUTE.search(answer)))
    return row


def _values(rows: Iterable[dict[str, Any]], key: str) -> list[Any]:
    return [r[key] for r in rows if r.get(key) is not None]


def _share(rows: list[dict[str, Any]], key: str) -> float | None:
    values = _values(rows, key)
    return sum(map(float, values)) / len(values) if values else None


def _rate(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Share, count and 95 % Wilson interval of a yes/no metric."""
    values = [bool(v) for v in _values(rows, key)]
    return {"share": _share(rows, key), "k": sum(values), "n": len(values), "ci": wilson(sum(values), len(values))}


def _median(values: list[Any]) -> float | None:
    return float(statistics.median(values)) if values else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures over ``rows`` (a half, a category or a mode); shares skip rows a metric does not apply to."""
    seconds = _values(rows, "seconds")
    modes: dict[str, int] = {}
    for r in rows:
        modes[r.get("mode", "unset")] = modes.get(r.get("mode", "unset"), 0) + 1
    abstention = _rate(rows, "abstained")
    false_abstention = _rate(rows, "false_abstention")
    return {
        "questions": len(rows),
        "correct": _share(rows, "correct"),
        "correct_by_mode": {m: _share([r for r in rows if r.get("mode") == m], "correct") for m in MODES[:2]},
        "facts_found": _share(rows, "facts_found"),
        "unsupported_answers": sum(bool(r.get("unsupported")) for r in rows),
        "unsupported_share": _share(rows, "unsupported"),
        "citations_supported": _share(rows, "citations_supported"),
        "abstention": abstention["share"],
        "abstention_n": abstention["n"],
        "abstention_ci": abstention["ci"],
        "false_abstention": false_abstention["share"],
        "false_abstention_n": false_abstention["n"],
        "false_abstention_ci": false_abstention["ci"],
        "evidence_recall": _share(rows, "evidence_recall"),
        "language_ok": _share(rows, "language_ok"),
        "refused": _share(rows, "refused"),
        "prompt_tokens_median": _median(_values(rows, "prompt_tokens")),
        "seconds_median": _median(seconds),
        "seconds_mean": sum(seconds) / len(seconds) if seconds else None,
        "modes": modes,
    }


def breakdown(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], str]) -> dict[str, dict[str, Any]]:
    """``summarise`` per group of ``rows`` (per category, per mode), groups in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return {name: summarise(group) for name, group in groups.items()}


def summary_of_half(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The overall figures of a half plus its per-category and per-mode figures."""
    return {
        **summarise(rows),
        "by_category": breakdown(rows, lambda r: str(r["category"])),
        "by_mode": breakdown(rows, lambda r: str(r.get("mode", "unset"))),
    }


def is_flagged(row: dict[str, Any]) -> bool:
    """Wrong, not abstained, badly cited, abstained by mistake or with an unsupported claim: listed in the report."""
    return bool(
        row.get("correct") is False
        or row.get("abstained") is False
        or row.get("citations_supported") is False
        or row.get("false_abstention")
        or row.get("unsupported")
    )
