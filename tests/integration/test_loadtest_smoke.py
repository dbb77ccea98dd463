"""A 20-second load-test smoke run: the real API (real e5, real Chroma) against the stand-in LLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loadtest_smoke_run_against_standin(indexed_chroma, e5_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "evals.loadtest",
        "--target",
        "standin",
        "--shape",
        "stress",
        "--users",
        "5",
        "--duration",
        "20",
        "--answer-tokens",
        "32",
        "--chroma-path",
        str(indexed_chroma),
        "--out",
        str(out),
    ]
    env = {**os.environ, "EMBEDDING_MODEL": str(e5_dir)}
    run = subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True, timeout=420)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "per-IP rate limits raised" in run.stdout
    (step,) = json.loads((out / "summary.json").read_text())
    assert step["requests"] > 0 and step["ok"] == step["requests"], step["errors"]
    assert step["audited"] == step["ok"]
    assert {"guard", "retrieve", "generate"} <= set(step["nodes_ms"])
    report = (out / "report.md").read_text()
    assert "| stress-5 | 5 |" in report and "| 100.0 % |" in report
    assert (out / "report.png").stat().st_size > 10_000
