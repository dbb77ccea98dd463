"""Integration fixtures: the real vLLM (CPU) server, a real Chroma index, the real API process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakes_serving import stop_process

ROOT = Path(__file__).resolve().parents[2]
E5_DIR = ROOT / ".cache" / "models" / "multilingual-e5-small"
VLLM_URL = f"http://127.0.0.1:{os.environ.get('VLLM_PORT', '8001')}/v1"
ADMIN_TOKEN = "integration-admin-token-0123456789"

# Reuse the folder `make models` prepared instead of converting again into a temp dir.
if (E5_DIR / ".complete").exists():
    os.environ.setdefault("E5_MODEL_DIR", str(E5_DIR))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration is an integration test."""
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _llmctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "deploy/llm/llmctl.sh", *args], cwd=ROOT, text=True, capture_output=True)


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[str]:
    """The real vLLM CPU server; started here (and stopped afterwards) unless already up."""
    was_up = _models_ok(VLLM_URL)
    if not was_up:
        started = _llmctl("start", "vllm")
        assert started.returncode == 0, f"vLLM did not start:\n{started.stdout}\n{started.stderr}"
    yield VLLM_URL
    if not was_up:
        _llmctl("stop", "vllm")


def _models_ok(url: str) -> bool:
    try:
        return httpx.get(url + "/models", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    """The prepared multilingual-e5-small folder (``make models`` builds it)."""
    assert (E5_DIR / ".complete").exists(), f"{E5_DIR} is not prepared: run `make models`"
    return E5_DIR


@pytest.fixture(scope="session")
def indexed_chroma(tmp_path_factory: pytest.TempPathFactory, e5_dir: Path) -> Path:
    """The demo catalogue ingested with the real embedder into a fresh persistent Chroma."""
    path = tmp_path_factory.mktemp("chroma")
    env = {**os.environ, "CHROMA_PATH": str(path), "EMBEDDING_MODEL": str(e5_dir)}
    run = subprocess.run([sys.executable, "-m", "ingest"], cwd=ROOT, env=env, text=True, capture_output=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "added 21" in run.stdout, run.stdout
    return path


@contextlib.contextmanager
def launch_api(workdir: Path, env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """Run ``uvicorn server:app`` with ``env`` on a free loopback port until ready; yield (base URL, log)."""
    port = free_port()
    log = workdir / "api.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"API exited during start-up:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(base + "/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"API not ready after 180 s:\n{log.read_text()[-3000:]}")
        yield base, log
    finally:
        stop_process(proc, 20)


def base_env(workdir: Path, vllm_server: str, indexed_chroma: Path, e5_dir: Path) -> dict[str, str]:
    """What every API under test needs: the index, the models, the LLM, its own audit file and stop flag."""
    return {
        "CHROMA_PATH": str(indexed_chroma),
        "EMBEDDING_MODEL": str(e5_dir),
        "LLM_BASE_URL": vllm_server,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "AUDIT_LOG_PATH": str(workdir / "audit.jsonl"),
        "EMERGENCY_STOP_FILE": str(workdir / "EMERGENCY_STOP"),
        "HISTORY_DB_PATH": str(workdir / "conversations.sqlite"),
    }


@pytest.fixture(scope="session")
def api_server(vllm_server: str, indexed_chroma: Path, e5_dir: Path, tmp_path_factory) -> Iterator[str]:
    """The API as a real uvicorn process on a free loopback port (the integration profile)."""
    workdir = tmp_path_factory.mktemp("api")
    env = {
        **base_env(workdir, vllm_server, indexed_chroma, e5_dir),
        # Test profile: the suite sends more than a shopper would; the defaults are tested in
        # tests/unit/security and, end to end, in tests/integration/test_serving_limits.py.
        "RATE_LIMIT_PER_MINUTE": "10000",
        "RATE_LIMIT_PER_HOUR": "100000",
        # A 2-core CI machine also runs vLLM's busy worker: give the CPU model room.
        "LLM_TIMEOUT_S": "180",
        "REWRITE_TIMEOUT_S": "120",  # the follow-up rewrite of /api/chat, same reason
        "REQUEST_TIMEOUT_S": "400",  # the whole-request deadline must not cut the slow CPU answer short
    }
    print("integration profile: rate limits raised to 10000/minute, 100000/hour for the API under test")
    with launch_api(workdir, env) as (base, _):
        yield base


@pytest.fixture
def api_profile(vllm_server: str, indexed_chroma: Path, e5_dir: Path, tmp_path_factory):
    """Start an extra API process with its own settings: ``with api_profile("name", {...}) as (base, dir):``."""

    @contextlib.contextmanager
    def start(name: str, overrides: dict[str, str]) -> Iterator[tuple[str, Path]]:
        workdir = tmp_path_factory.mktemp(name)
        env = {**base_env(workdir, vllm_server, indexed_chroma, e5_dir), **overrides}
        with launch_api(workdir, env) as (base, _):
            yield base, workdir

    return start
