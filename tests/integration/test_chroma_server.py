"""``CHROMA_URL``: ingest into a real Chroma server (``chroma run`` from the chromadb package) and search it.

The server runs on loopback with its own data folder; the index is filled by the ingest CLI exactly as in
production (``CHROMA_URL`` set), then searched through ``open_client(url=…)`` with the real e5 embedder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.embeddings import make_embedder
from core.vectorstore import VectorStore, open_client

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path):
    chroma = Path(sys.executable).with_name("chroma")
    port = _free_port()
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited: {(tmp_path / 'chroma.log').read_text()[-2000:]}")
            try:
                if httpx.get(url + "/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chroma run did not answer in 60 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_ingest_and_search_through_a_chroma_server(chroma_server, e5_dir):
    env = {**os.environ, "CHROMA_URL": chroma_server, "EMBEDDING_MODEL": str(e5_dir), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "ingest"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "added 21" in run.stdout, run.stdout[-500:]

    embedder = make_embedder("sentence-transformers", str(e5_dir))
    store = VectorStore(open_client(Path("/nonexistent-unused"), chroma_server), "catalogue", embedder.name)
    assert store.count() >= 21
    vector = embedder.embed_queries(["Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"])[0]
    hits = store.search(vector, k=3)
    assert hits and hits[0].doc_id == "purrclean-autobox-9", [h.doc_id for h in hits]

    again = subprocess.run(
        [sys.executable, "-m", "ingest"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0 and "unchanged 21" in again.stdout, again.stdout[-500:]
