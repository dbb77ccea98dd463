"""Debian's nginx with the production template, on loopback, in front of two real app instances (blue, green).

The apps are the real FastAPI app on real uvicorn servers with the scripted test LLM (no vLLM needed);
nginx is the real binary, rendered from deploy/nginx/nginx.conf.template with loopback upstreams.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from ops_tools import nginx_cmd, nginx_conf, require_binary, running_nginx

from core.resources import set_resources
from core.settings import get_settings
from fakes import fake_resources
from fakes_serving import free_port, served, slow_llm

QUESTION = "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"
ROLLBACK = Path(__file__).resolve().parents[2] / "deploy" / "rollback.sh"


@pytest.fixture
def blue_green(tmp_path, monkeypatch):
    """Two app instances on free loopback ports: (blue URL, green URL)."""
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "1000")
    monkeypatch.setenv("RATE_LIMIT_PER_HOUR", "10000")
    monkeypatch.setenv("TRUSTED_PROXIES", '["127.0.0.1/32"]')
    get_settings.cache_clear()
    res = fake_resources(tmp_path)
    res.llm = slow_llm(0.05, words=40)  # ~2 s of streamed tokens: buffering would show
    set_resources(res)
    import server

    with served(server.create_app()) as blue, served(server.create_app()) as green:
        yield blue, green


def _upstreams(log_path, since: int) -> collections.Counter[str]:
    lines = log_path.read_text().splitlines()[since:]
    return collections.Counter(m.group(1) for line in lines if (m := re.search(r" up=(\S+)", line)))


def _log_len(log_path) -> int:
    return len(log_path.read_text().splitlines()) if log_path.exists() else 0


def _flip(nginx: str, prefix, listen: str, blue: str, green: str, weights: tuple[int, int]) -> None:
    """What deploy/rollback.sh does: re-render, ``nginx -t``, reload."""
    nginx_conf(prefix, listen, blue, green, weights, rate="5r/s", burst="20")
    subprocess.run(nginx_cmd(nginx, prefix, "-t", "-q"), check=True)
    subprocess.run(nginx_cmd(nginx, prefix, "-s", "reload"), check=True)
    time.sleep(1.0)  # the old workers finish; new ones take the new upstream weights


def test_config_passes_nginx_t(tmp_path):
    nginx = require_binary("nginx")
    nginx_conf(tmp_path, "127.0.0.1:8", "127.0.0.1:9", "127.0.0.1:10", (0, 100))
    run = subprocess.run(nginx_cmd(nginx, tmp_path, "-t"), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "test is successful" in run.stderr


def test_blue_green_weights_sse_and_rate_limit(tmp_path, blue_green):
    nginx = require_binary("nginx")
    blue, green = (u.removeprefix("http://") for u in blue_green)
    port = free_port()
    listen, base = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    nginx_conf(tmp_path, listen, blue, green, (100, 0), rate="5r/s", burst="20")
    access = tmp_path / "logs" / "access.log"
    with running_nginx(nginx, tmp_path, base + "/health"), httpx.Client(base_url=base, timeout=30) as client:
        # 1. SSE through the proxy: events arrive while the answer is still being generated.
        t0 = time.monotonic()
        arrivals: list[float] = []
        with client.stream("POST", "/rag/stream", json={"input": {"question": QUESTION}}) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            for line in resp.iter_lines():
                if line.startswith("data:") and '"answer"' in line:
                    arrivals.append(time.monotonic() - t0)
        total = time.monotonic() - t0
        # One checked sentence is released early (guards.stream), then the model goes on for ~1.6 s: through a
        # buffering proxy the sentence would only arrive with the end of the stream.
        assert len(arrivals) >= 1, arrivals
        assert arrivals[0] < total - 1.0, f"first answer chunk at {arrivals[0]:.2f} s of {total:.2f} s: buffered"

        # 2. Weights 100/0: everything goes to blue; flipped to 0/100 (the runbook), everything to green.
        time.sleep(4)  # refill the per-IP bucket
        for weights, expected in (((100, 0), {blue}), ((0, 100), {green}), ((50, 50), {blue, green})):
            _flip(nginx, tmp_path, listen, blue, green, weights)
            since = _log_len(access)
            assert all(client.get("/health").status_code == 200 for _ in range(12))
            seen = _upstreams(access, since)
            assert sum(seen.values()) == 12, seen
            assert set(seen) == expected, (weights, seen)
            time.sleep(3)

        # 2b. The runbook's script itself (deploy/rollback.sh, local mode): release to blue, roll back to
        #     green, and a switch to a dead deployment is undone by the script's health check.
        script_env = {
            **os.environ,
            "DEPLOY_MODE": "local",
            "NGINX_PREFIX": str(tmp_path),
            "NGINX_CONF_OUT": str(tmp_path / "nginx.conf"),
            "BLUEGREEN_STATE": str(tmp_path / "state" / "live"),
            "BLUE_SERVERS": blue,
            "GREEN_SERVERS": green,
            "NGINX_LISTEN": listen,
            "NGINX_RATE": "5r/s",
            "NGINX_BURST": "20",
            "HEALTH_URL": base + "/health",
        }
        for args, expected in ((["blue"], blue), ([], green)):  # no argument = roll back to the other colour
            t0 = time.monotonic()
            run = subprocess.run([str(ROLLBACK), *args], env=script_env, capture_output=True, text=True, timeout=60)
            took = time.monotonic() - t0
            assert run.returncode == 0, run.stdout + run.stderr
            since = _log_len(access)
            assert all(client.get("/health").status_code == 200 for _ in range(8))
            assert set(_upstreams(access, since)) == {expected}, run.stdout
            assert took < 30, f"switch took {took:.1f} s"
            time.sleep(2)
        status = subprocess.run([str(ROLLBACK), "status"], env=script_env, capture_output=True, text=True, timeout=10)
        assert status.stdout.strip() == "green"
        dead = {**script_env, "BLUE_SERVERS": f"127.0.0.1:{free_port()}"}  # nothing listens there
        run = subprocess.run([str(ROLLBACK), "blue"], env=dead, capture_output=True, text=True, timeout=90)
        assert run.returncode == 1 and "restoring the previous nginx config" in run.stderr, run.stdout + run.stderr
        time.sleep(1.5)
        since = _log_len(access)
        assert all(client.get("/health").status_code == 200 for _ in range(5))
        assert set(_upstreams(access, since)) == {green}
        time.sleep(4)

        # 3. limit_req per IP: a burst well above rate + burst gets JSON 429s from nginx itself.
        codes = collections.Counter()
        bodies = set()
        for _ in range(60):
            r = client.get("/health")
            codes[r.status_code] += 1
            if r.status_code == 429:
                bodies.add(json.dumps(r.json()))
                assert r.headers.get("retry-after") == "10"
        assert codes[200] >= 1 and codes[429] >= 30, codes
        assert bodies == {json.dumps({"error": "too many requests, please slow down"})}

        # 4. /metrics is not exposed publicly.
        time.sleep(1)
        assert client.get("/metrics").status_code == 404
