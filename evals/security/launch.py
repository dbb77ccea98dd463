"""Starting the API under test (and the LLM if needed), and checking its audit file."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from evals.security.cases import E5_DIR, RAISED_LIMITS, ROOT, log


def audit_files(path: Path) -> list[Path]:
    """The audit file and its rotated siblings."""
    return sorted(path.parent.glob(path.name + "*")) if path.parent.exists() else []


def missing_audit_ids(path: Path, request_ids: list[str], wait_s: float = 10.0) -> list[str]:
    """Request ids without an audit line (waits up to ``wait_s`` for the writer thread)."""
    wanted = {r for r in request_ids if r}
    deadline = time.monotonic() + wait_s
    while True:
        seen: set[str] = set()
        for f in audit_files(path):
            for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    rid = json.loads(line).get("request_id")
                    if rid in wanted:
                        seen.add(rid)
        missing = sorted(wanted - seen)
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.5)


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _models_ok(url: str) -> bool:
    try:
        return httpx.get(url.rstrip("/") + "/models", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass(kw_only=True)
class ServerInfo:
    """The API under test."""

    url: str
    canary: str
    audit_log: Path
    log_file: Path
    llm_url: str
    env_overrides: dict[str, str]


def ingest_catalogue(chroma_path: Path, e5_dir: Path = E5_DIR) -> str:
    """Ingest ``data/catalogue`` with the real embedder into a fresh Chroma at ``chroma_path``."""
    env = {**os.environ, "CHROMA_PATH": str(chroma_path), "EMBEDDING_MODEL": str(e5_dir)}
    run = subprocess.run(
        [sys.executable, "-m", "ingest"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=900
    )
    if run.returncode != 0:
        raise RuntimeError(f"ingest failed:\n{run.stdout[-1500:]}\n{run.stderr[-1500:]}")
    return run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""


@contextlib.contextmanager
def started_server(
    workdir: Path,
    *,
    llm_url: str | None = None,
    engine: str = "vllm",
    chroma_path: Path | None = None,
    ready_timeout_s: float = 180.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ServerInfo]:
    """Start (LLM if needed,) ingest, and run the API as a uvicorn subprocess; stop what was started."""
    if not (E5_DIR / ".complete").exists():
        raise RuntimeError(f"{E5_DIR} is not prepared: run `make models`")
    started_llm = False
    if llm_url is None:
        port = os.environ.get("VLLM_PORT", "8001") if engine == "vllm" else os.environ.get("LLAMACPP_PORT", "8002")
        llm_url = f"http://127.0.0.1:{port}/v1"
        if not _models_ok(llm_url):
            log(f"starting the LLM server: deploy/llm/llmctl.sh start {engine}")
            run = subprocess.run(
                ["bash", "deploy/llm/llmctl.sh", "start", engine], cwd=ROOT, text=True, capture_output=True
            )
            if run.returncode != 0:
                raise RuntimeError(f"{engine} did not start:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
            # Stop it afterwards only if this call started it (not when it waited for someone else's start).
            started_llm = f"started {engine} (pid" in run.stdout
    log(f"LLM: {llm_url}")
    proc: subprocess.Popen[bytes] | None = None
    try:
        if chroma_path is None:
            chroma_path = workdir / "chroma"
            t0 = time.monotonic()
            summary = ingest_catalogue(chroma_path)
            log(f"ingested the catalogue into {chroma_path}: {summary} ({time.monotonic() - t0:.0f} s)")
        canary = f"KH-SEC-{secrets.token_hex(8)}"
        audit_log = workdir / "audit" / "audit.jsonl"
        log_file = workdir / "api.log"
        overrides = {
            "CHROMA_PATH": str(chroma_path),
            "EMBEDDING_MODEL": str(E5_DIR),
            "LLM_BASE_URL": llm_url,
            "AUDIT_LOG_PATH": str(audit_log),
            "AUDIT_HMAC_KEY": secrets.token_hex(32),
            "EMERGENCY_STOP_FILE": str(workdir / "EMERGENCY_STOP"),
            "PROMPT_CANARY": canary,
            **RAISED_LIMITS,
            **(extra_env or {}),
        }
        if extra_env:
            log(
                "extra server settings (not the defaults under test): "
                + ", ".join(f"{k}={v!r}" for k, v in extra_env.items())
            )
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **overrides}
        env.pop("REDIS_URL", None)
        log(
            "test profile: rate limits raised for the API under test to "
            + ", ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items())
            + " (defaults 10/minute, 100/hour, backoff after 3 guard strikes)"
        )
        api_port = free_port()
        with log_file.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port", str(api_port)],
                cwd=ROOT,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"API exited during start-up:\n{log_file.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/ready", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"API not ready after {ready_timeout_s:.0f} s:\n{log_file.read_text()[-3000:]}")
            time.sleep(1)
        log(f"API ready on {base} (log {log_file}, audit {audit_log})")
        yield ServerInfo(
            url=base, canary=canary, audit_log=audit_log, log_file=log_file, llm_url=llm_url, env_overrides=overrides
        )
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if started_llm:
            subprocess.run(["bash", "deploy/llm/llmctl.sh", "stop", engine], cwd=ROOT, capture_output=True)
