"""Debian's Prometheus and promtool against the rules in deploy/prometheus and a live app's /metrics."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
import yaml
from ops_tools import ROOT, require_binary, wait_http

from core.resources import set_resources
from core.settings import get_settings
from fakes import fake_resources
from fakes_serving import free_port, served, stop_process

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
QUESTION = "Hoeveel liter is de afvalbak van de zelfreinigende kattenbak?"


def test_promtool_rule_unit_tests_and_config():
    promtool = require_binary("promtool")
    tests = subprocess.run(
        [promtool, "test", "rules", "rules_test.yml"], cwd=RULES.parent, capture_output=True, text=True
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "SUCCESS" in tests.stdout
    config = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"], cwd=RULES.parent, capture_output=True, text=True
    )
    assert config.returncode == 0, config.stdout + config.stderr
    assert "17 rules found" in config.stdout + config.stderr


@pytest.fixture
def app_url(tmp_path, monkeypatch):
    """The real app (scripted LLM) on a real uvicorn server, with a few answered requests behind it."""
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "1000")
    get_settings.cache_clear()
    set_resources(fake_resources(tmp_path, *["De afvalbak is 9 liter."] * 5))
    import server

    with served(server.create_app()) as url:
        for _ in range(3):
            assert httpx.post(url + "/rag/invoke", json={"input": {"question": QUESTION}}, timeout=30).is_success
        yield url


def test_prometheus_scrapes_the_api_and_every_rule_evaluates(tmp_path, app_url):
    prometheus = require_binary("prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "shop-assistant",
                "static_configs": [{"targets": [app_url.removeprefix("http://")]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = tmp_path / "prometheus.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(base + "/-/ready", proc, log, timeout_s=60)

        def query(expr: str) -> dict:
            body = httpx.get(base + "/api/v1/query", params={"query": expr}, timeout=10).json()
            assert body["status"] == "success", (expr, body)
            return body["data"]

        # Traffic keeps coming until the recording rules have a rate and a latency P95 from it. The P95 is NaN
        # until two scrapes saw the latency buckets grow between them: waiting for the request rate alone (which
        # exists from the second scrape on, even at 0) once read a NaN P95 (CI, 2026-11-27).
        deadline, p95 = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            httpx.get(app_url + "/openapi.json", timeout=5)  # traffic that the latency rule counts
            p95 = query("job:shop_assistant_http_latency_seconds:p95_5m")["result"]
            if query("job:shop_assistant_http_requests:rate5m")["result"] and p95 and p95[0]["value"][1] != "NaN":
                break
            time.sleep(1)
        else:
            pytest.fail(f"no recorded request rate and latency P95 after 60 s (P95: {p95}):\n{log.read_text()[-2000:]}")
        assert query('up{job="shop-assistant"}')["result"][0]["value"][1] == "1"
        assert query("shop_assistant_http_requests_total")["result"]

        # Every rule of rules.yml has been evaluated without error, and each expression queries cleanly.
        rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            loaded = httpx.get(base + "/api/v1/rules", timeout=10).json()["data"]["groups"]
            health = {r["name"]: (r["health"], r.get("lastError", "")) for g in loaded for r in g["rules"]}
            if len(health) == len(rules) and all(h == "ok" for h, _ in health.values()):
                break
            time.sleep(1)
        assert len(health) == len(rules) and all(h == "ok" for h, _ in health.values()), health
        for rule in rules:
            query(rule["expr"])
        assert 0 < float(p95[0]["value"][1]) < 10, p95
    finally:
        stop_process(proc, 20)
