"""The load-test report builder on a recorded smoke run (stand-in LLM; one step with degradation forced on)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from evals.loadtest import report

RECORDED = Path(__file__).parent / "data" / "loadtest_run"


def load(run: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (run / name).read_text().splitlines()]


def test_report_from_recorded_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RECORDED, run)
    rows = load(run, "results-smoke.jsonl")
    audit = {a["request_id"]: a for a in load(run, "audit.jsonl")}
    # One failed request added to the first step (the recorded runs had none).
    failed = {"step": "stress-5", "start": rows[0]["start"], "total_s": 0.01, "ok": False, "error": "HTTP 503"}
    (run / "results-failed.jsonl").write_text(json.dumps(failed) + "\n")

    md_path, png_path = report.build(run)

    summary = {s["name"]: s for s in json.loads((run / "summary.json").read_text())}
    first, second = summary["stress-5"], summary["stress-6"]
    assert (first["requests"], first["ok"]) == (8, 7)
    assert first["success_rate"] == 7 / 8
    assert first["errors"] == {"HTTP 503": 1}
    ok_first = sorted(r["total_s"] for r in rows if r["step"] == "stress-5")
    assert first["latency"]["p50"] == ok_first[3]  # 7 values: the median is the 4th
    assert first["latency"]["p99"] <= ok_first[-1]
    assert first["degraded_share"] == 0.0 and first["audited"] == 7
    assert second["degraded_share"] == 5 / 7
    generate = sorted(audit[r["request_id"]]["nodes_ms"]["generate"] for r in rows if r["step"] == "stress-6")
    assert second["nodes_ms"]["generate"]["p50"] == generate[3]
    mine = [r for r in rows if r["step"] == "stress-6"]
    window = max(r["start"] + r["total_s"] for r in mine) - min(r["start"] for r in mine)
    assert abs(second["answers_per_min"] - 7 / (window / 60)) < 1e-9

    md = md_path.read_text()
    assert "| step | users | s | requests | success | refused | P50 s | P95 s | P99 s | TTFT P50 s" in md
    assert "| stress-5 | 5 |" in md and "| 87.5 % |" in md
    assert "71.4 %" in md  # stress-6 degraded share
    assert "Time per graph node" in md and "| generate |" not in md.split("Time per graph node")[0]
    assert "- stress-5: 1 × HTTP 503" in md
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 10_000


def test_step_without_requests_renders_dashes(tmp_path):
    step = {"name": "stress-100", "shape": "stress", "users": 100, "started": 0.0, "ended": 60.0}
    s = report.summarise(step, [], {})
    assert s["requests"] == 0 and s["success_rate"] is None and s["answers_per_min"] == 0
    line = report.markdown([s], {"target": "standin"}).splitlines()
    row = next(x for x in line if x.startswith("| stress-100"))
    assert row.count("–") == 9  # success, refused, 3 latency and 2 TTFT percentiles, degraded, RSS


def test_audit_join_uses_only_stream_requests():
    records = [
        {"request_id": "a", "route": "/rag/stream", "degraded": ["expansion"]},
        {"request_id": "b", "route": "/ready"},
        {"route": "/rag/stream"},
    ]
    assert list(report.audit_by_request(records)) == ["a"]


def test_api_memory_is_reported_when_sampled():
    step = {
        "name": "stress-10",
        "shape": "stress",
        "users": 10,
        "started": 0.0,
        "ended": 60.0,
        "api_rss_mib_max": 1234.5,
    }
    md = report.markdown([report.summarise(step, [], {})], {"target": "standin", "api_rss_mib_idle": 987.6})
    row = next(x for x in md.splitlines() if x.startswith("| stress-10"))
    assert row.endswith("| 1234 |")  # the last column, whole MiB
    assert "RSS at idle" in md and "988 MiB" in md


def test_rss_sampler_reads_this_process():
    import os
    import time

    from evals.loadtest.run import RssSampler

    with RssSampler(os.getpid(), interval_s=0.05) as sampler:
        time.sleep(0.3)
    assert sampler.samples and all(50 < s < 100_000 for s in sampler.samples)
