"""Helpers of the deployment tests: Debian's nginx, Prometheus and Alertmanager on loopback, two app instances."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from fakes_serving import stop_process

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "nginx"))
import render  # noqa: E402  (deploy/nginx/render.py: standard library only, runs on a bare host)


def require_binary(name: str) -> str:
    """The binary's path; skip (fail under CI=true) when `make ops-tools` has not installed it."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed: run `make ops-tools` (Debian's nginx, prometheus, prometheus-alertmanager)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def nginx_conf(
    prefix: Path,
    listen: str,
    blue: str,
    green: str,
    weights: tuple[int, int],
    *,
    operator_allow: tuple[str, ...] = render.DEFAULT_OPERATOR_ALLOW,
    real_ip_from: tuple[str, ...] = (),
    **rates: str,
) -> Path:
    """Render the production template for loopback with every path under ``prefix``.

    ``operator_allow`` and ``real_ip_from`` are render.py's ``--operator-allow`` and ``--real-ip-from``.
    """
    for sub in ("logs", "state"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    values = {
        "UPSTREAM_SERVERS": render.upstream_servers([blue], [green], weights),
        "LISTEN": listen,
        "TLS": render.tls_lines(None, None),
        "STATE_DIR": str(prefix / "state"),
        "LOG_DIR": str(prefix / "logs"),
        "RATE": rates.get("rate", "20r/s"),
        "BURST": rates.get("burst", "40"),
        "ASK_RATE": rates.get("ask_rate", "2r/s"),
        "ASK_BURST": rates.get("ask_burst", "10"),
        **render.identity_values(list(operator_allow), list(real_ip_from)),
    }
    conf = prefix / "nginx.conf"
    conf.write_text(render.render(values), encoding="utf-8")
    return conf


def nginx_cmd(nginx: str, prefix: Path, *args: str) -> list[str]:
    """``nginx`` with the temp prefix, config and error log (no root paths)."""
    return [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "logs" / "error.log"), *args]


@contextmanager
def running_nginx(nginx: str, prefix: Path, url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run nginx in the foreground until ``url`` answers; stop it afterwards."""
    proc = subprocess.Popen(nginx_cmd(nginx, prefix, "-g", "daemon off;"), stderr=subprocess.PIPE)
    try:
        wait_http(url, proc, prefix / "logs" / "error.log")
        yield proc
    finally:
        stop_process(proc, 10)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> None:
    """Wait until ``url`` answers at all; fail with the log when the process exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args} exited: {log.read_text() if log.exists() else ''}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer in {timeout_s:.0f} s")
