"""Load-test report: per-step figures from the locust result lines and the API's audit log.

``summarise`` joins each request (by ``X-Request-ID``) with its audit line (degraded steps,
per-node times) for every door (``ROUTES``); ``markdown`` renders the tables, ``evals.loadtest.breakdown``
the CPU, guard/checkpointer and chat-turn tables; ``plot`` draws the PNG. Can be rerun on a
finished run's folder: ``python -m evals.loadtest.report var/loadtest/<run>``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from evals.loadtest import breakdown

ROUTES = {"rag": "/rag/stream", "chat": "/api/chat/stream", "v1": "/v1/chat/completions"}
NODES = ("guard", "rewrite", "expand", "retrieve", "rerank", "prompt", "generate", "output_filter")


def read_jsonl(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """All JSON objects of the given files (missing files and broken lines are skipped)."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                rows.append(obj)
    return rows


def audit_by_request(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Audit lines of the doors' requests (``ROUTES``) by request id."""
    routes = set(ROUTES.values())
    return {r["request_id"]: r for r in records if r.get("request_id") and r.get("route") in routes}


def pct(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (linear), or ``None`` without values."""
    return float(np.percentile(values, q)) if values else None


def summarise(step: dict[str, Any], rows: list[dict[str, Any]], audit: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Figures of one step: ``step`` is its manifest entry (name, shape, users, started, ended)."""
    mine = [r for r in rows if r.get("step") == step["name"]]
    ok = [r for r in mine if r.get("ok")]
    latency = [float(r["total_s"]) for r in ok]
    ttft = [float(r["ttft_s"]) for r in ok if r.get("ttft_s") is not None]
    joined = [audit[r["request_id"]] for r in ok if r.get("request_id") in audit]
    degraded = [a for a in joined if a.get("degraded")]
    # The window in which this step's requests ran (locust start-up and shut-down excluded).
    if mine:
        window = max(float(r["start"]) + float(r["total_s"]) for r in mine) - min(float(r["start"]) for r in mine)
    else:
        window = float(step["ended"]) - float(step["started"])
    minutes = max(window, 1e-9) / 60
    nodes: dict[str, dict[str, float | None]] = {}
    for node in NODES:
        ms = [float(a["nodes_ms"][node]) for a in joined if node in (a.get("nodes_ms") or {})]
        if ms:
            nodes[node] = {"p50": pct(ms, 50), "p95": pct(ms, 95), "mean": float(np.mean(ms))}
    errors: dict[str, int] = {}
    for r in mine:
        if not r.get("ok"):
            errors[str(r.get("error"))] = errors.get(str(r.get("error")), 0) + 1
    return {
        "name": step["name"],
        "shape": step["shape"],
        "users": int(step["users"]),
        "duration_s": round(minutes * 60, 1),
        "requests": len(mine),
        "ok": len(ok),
        "success_rate": len(ok) / len(mine) if mine else None,
        "refused": sum(1 for r in ok if r.get("refused")),
        "refused_share": sum(1 for r in ok if r.get("refused")) / len(ok) if ok else None,
        "latency": {f"p{q}": pct(latency, q) for q in (50, 95, 99)},
        "ttft": {f"p{q}": pct(ttft, q) for q in (50, 95, 99)},
        "answers_per_min": len(ok) / minutes,
        "audited": len(joined),
        "degraded_share": len(degraded) / len(joined) if joined else None,
        "degraded_steps": {
            step: sum(1 for a in degraded if step in a["degraded"]) / len(joined)
            for step in ("expansion", "rerank", "context")
            if joined
        },
        "nodes_ms": nodes,
        "errors": errors,
        "api_rss_mib_max": step.get("api_rss_mib_max"),
    } | breakdown.summarise(step, ok, joined)


def _pct_cell(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f} %"


def _f(x: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def _doors(meta: dict[str, Any]) -> str:
    doors = meta.get("doors") or ["rag"]
    text = "endpoints " if len(doors) > 1 else "endpoint "
    text += ", ".join(f"`{ROUTES.get(d, d)}`" for d in doors)
    if meta.get("checkpointer"):
        text += f" (conversations stored in {meta['checkpointer']})"
    return text


def markdown(summaries: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The report as Markdown: conditions, the main table, per-node times, errors."""
    lines = [
        f"# Load test: {meta.get('target', '?')} ({meta.get('started', '')})",
        "",
        f"LLM: {meta.get('llm', '?')}; answer length fixed at {meta.get('answer_tokens', '?')} tokens; "
        f"{meta.get('questions', '?')} distinct questions; {_doors(meta)}; API on 127.0.0.1 "
        "(rate limits raised for the run); load generator, API and LLM server share this machine. "
        f"Degradation thresholds (in flight: expansion, rerank, short context): {meta.get('degrade_thresholds', '?')}.",
        "",
        "| step | users | s | requests | success | refused | P50 s | P95 s | P99 s | TTFT P50 s | TTFT P95 s "
        "| answers/min | degraded | API RSS max MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lat, ttft = s["latency"], s["ttft"]
        lines.append(
            f"| {s['name']} | {s['users']} | {s['duration_s']:.0f} | {s['requests']} "
            f"| {_f(s['success_rate'] and 100 * s['success_rate'], '{:.1f} %')} "
            f"| {_pct_cell(s.get('refused_share'))} "
            f"| {_f(lat['p50'])} | {_f(lat['p95'])} | {_f(lat['p99'])} | {_f(ttft['p50'])} | {_f(ttft['p95'])} "
            f"| {s['answers_per_min']:.1f} | {_f(s['degraded_share'] and 100 * s['degraded_share'], '{:.1f} %')} "
            f"| {_f(s.get('api_rss_mib_max'), '{:.0f}')} |"
        )
    if meta.get("api_rss_mib_idle"):
        lines += [
            "",
            f"API process RSS at idle (after start-up, before the warm-up): {meta['api_rss_mib_idle']:.0f} MiB.",
        ]
    present = [n for n in NODES if any(n in s["nodes_ms"] for s in summaries)]
    if present:
        lines += ["", "Time per graph node, P50 / P95 ms (from the audit log):", ""]
        lines += ["| step | " + " | ".join(present) + " |", "|---" * (len(present) + 1) + "|"]
        for s in summaries:
            cells = [
                f"{s['nodes_ms'][n]['p50']:.0f} / {s['nodes_ms'][n]['p95']:.0f}" if n in s["nodes_ms"] else "–"
                for n in present
            ]
            lines.append(f"| {s['name']} | " + " | ".join(cells) + " |")
    if any(s.get("degraded_steps") for s in summaries):
        lines += ["", "Degraded answers per skipped step (share of audited answers):", ""]
        lines += ["| step | expansion skipped | rerank skipped | short context |", "|---|---|---|---|"]
        for s in summaries:
            d = s.get("degraded_steps") or {}
            cells = [_pct_cell(d.get(k)) for k in ("expansion", "rerank", "context")]
            lines.append(f"| {s['name']} | " + " | ".join(cells) + " |")
    lines += breakdown.markdown(summaries)
    failed = [(s["name"], e, n) for s in summaries for e, n in sorted(s["errors"].items())]
    if failed:
        lines += ["", "Failures:", ""] + [f"- {name}: {n} × {err}" for name, err, n in failed]
    return "\n".join(lines) + "\n"


def plot(summaries: list[dict[str, Any]], path: Path) -> Path:
    """Latency and TTFT percentiles, answers per minute and node times per step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{s['name']}\n({s['users']} users)" for s in summaries]
    x = np.arange(len(summaries))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for ax, key, title in ((axes[0][0], "latency", "end-to-end latency (s)"), (axes[0][1], "ttft", "first token (s)")):
        for i, q in enumerate((50, 95, 99)):
            ax.bar(x + (i - 1) * 0.27, [s[key][f"p{q}"] or 0 for s in summaries], 0.27, label=f"P{q}")
        ax.set_title(title)
        ax.set_xticks(x, names, fontsize=8)
        ax.legend()
    axes[1][0].bar(x, [s["answers_per_min"] for s in summaries], color="tab:green")
    axes[1][0].set_title("answers per minute")
    axes[1][0].set_xticks(x, names, fontsize=8)
    bottom = np.zeros(len(summaries))
    for node in NODES:
        vals = np.array([(s["nodes_ms"].get(node) or {}).get("mean") or 0.0 for s in summaries])
        if vals.any():
            axes[1][1].bar(x, vals, 0.6, bottom=bottom, label=node)
            bottom += vals
    axes[1][1].set_title("mean time per graph node (ms)")
    axes[1][1].set_xticks(x, names, fontsize=8)
    axes[1][1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def build(run_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.png`` and ``summary.json`` for a run folder; return the first two."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    rows = read_jsonl(sorted(run_dir.glob("results-*.jsonl")))
    audit = audit_by_request(read_jsonl(sorted(run_dir.glob("audit.jsonl*"))))
    summaries = [summarise(step, rows, audit) for step in manifest["steps"]]
    (run_dir / "summary.json").write_text(json.dumps(summaries, indent=1), encoding="utf-8")
    md = run_dir / "report.md"
    md.write_text(markdown(summaries, manifest), encoding="utf-8")
    return md, plot(summaries, run_dir / "report.png")


if __name__ == "__main__":
    md_path, png_path = build(Path(sys.argv[1]))
    print(md_path.read_text(encoding="utf-8"))
    print(f"plot: {png_path}")
