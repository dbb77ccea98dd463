"""LangGraph Studio's local server (`langgraph dev`) serves the graph and the mounted FastAPI app."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, free_port
from core.outcomes import ANSWERED


def test_langgraph_dev_runs_graph_and_mounts_api(vllm_server, indexed_chroma, e5_dir, tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "CHROMA_PATH": str(indexed_chroma),
        "EMBEDDING_MODEL": str(e5_dir),
        "LLM_BASE_URL": vllm_server,
        "LANGSMITH_TRACING": "false",
        "LLM_TIMEOUT_S": "180",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    log = tmp_path / "langgraph-dev.log"
    cli = Path(os.sys.executable).parent / "langgraph"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(base + "/ok", timeout=3).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev not up after 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        # The mounted FastAPI app answers next to the LangGraph API.
        assert httpx.get(base + "/health", timeout=10).json() == {"status": "ok"}
        run = httpx.post(
            base + "/runs/wait",
            json={
                "assistant_id": "shop_assistant",
                "input": {"question": "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"},
            },
            timeout=180,
        )
        assert run.status_code == 200, run.text
        out = run.json()
        # The graph's output (OutputState): the checked answer, its mode, the evidence lines it was allowed to use.
        # Strong evidence for this question: the model's checked sentences or the quoted evidence, never an abstention.
        assert out["answer"].strip() and out["refused"] is False and out["mode"] in ANSWERED, out
        assert isinstance(out["cut"], bool), out
        assert "purrclean-autobox-9" in [s["id"] for s in out["sources"]], out["sources"]
        evidence_docs = {line["doc_id"] for line in out["evidence"]}
        assert {s["id"] for s in out["sources"]} <= evidence_docs, (out["sources"], evidence_docs)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited on its own (a failed start-up)
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
