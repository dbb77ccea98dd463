"""``notebooks/quickstart.ipynb`` runs top to bottom: offline default models, the real vLLM, nbclient, a kernel."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from core.outcomes import OUTCOMES

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
NEEDS = [ROOT / ".cache/models/multilingual-e5-small/.complete", ROOT / ".cache/guards/injection.npz"]


def test_quickstart_notebook_executes(vllm_server, monkeypatch):
    monkeypatch.setenv("LLM_BASE_URL", vllm_server)  # the kernel inherits it: the real local LLM answers
    missing = [str(p.relative_to(ROOT)) for p in NEEDS if not p.exists()]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"models missing ({', '.join(missing)}): `make models` prepares them")
        pytest.skip(f"models missing ({', '.join(missing)}): run `make models`")
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    elapsed = time.perf_counter() - t0
    text = "\n".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert "chunks indexed" in text and "expanded queries:" in text and "--- system ---" in text
    assert "questions with expected documents" in text and "MRR" in text
    assert "SCRIPTED" not in text  # the answers came from the real LLM
    # The whole graph's output (answer, sources, refused, language, mode, evidence, cut) says how it was answered.
    modes = re.findall(r'"mode": "([a-z_]+)"', text)
    assert modes and set(modes) <= set(OUTCOMES), modes
    images = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(images) == 1  # the metrics plot
    assert (ROOT / "var/artifacts/retriever_metrics.png").stat().st_size > 5_000
    assert elapsed < 300, f"the notebook took {elapsed:.0f} s"
