"""The production stack files: vLLM stays internal, nginx renders correctly, the rollback script is sound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
sys.path.insert(0, str(DEPLOY / "nginx"))
import render  # noqa: E402


def test_compose_keeps_vllm_and_the_data_stores_internal():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert compose["networks"]["backend"] == {"internal": True}
    for name in ("vllm", "chroma", "redis", "postgres", "prometheus"):
        assert "ports" not in services[name], name
        assert services[name]["networks"] == ["backend"], name
    published = {name for name, svc in services.items() if "ports" in svc}
    assert published == {"nginx", "grafana"}
    assert all(p.startswith("127.0.0.1:") for p in services["grafana"]["ports"])
    assert services["nginx"]["networks"] == ["frontend"]  # nginx cannot even reach vLLM
    assert {"api-blue", "api-green"} <= set(services)
    assert services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_weights_render_as_down_for_zero_and_fail_closed():
    lines = render.upstream_servers(["b1:8000", "b2:8000"], ["g1:8000"], (0, 100)).splitlines()
    assert [line.split("#")[0].strip() for line in lines] == [
        "server b1:8000 down;",
        "server b2:8000 down;",
        "server g1:8000 weight=100 max_fails=3 fail_timeout=10s;",
    ]
    with pytest.raises(ValueError):
        render.upstream_servers(["b"], ["g"], (0, 0))
    with pytest.raises(KeyError, match="LISTEN"):
        render.render({"X": "1"}, "listen @@LISTEN@@; x @@X@@;")


def test_rendered_template_has_the_sse_and_rate_limit_settings(tmp_path):
    out = tmp_path / "nginx.conf"
    render.main(["--blue", "b:1", "--green", "g:1", "--weights", "100/0", "--tls-cert", "c.pem", "--tls-key", "k.pem",
                 "--listen", "443 ssl", "--out", str(out)])  # fmt: skip
    text = out.read_text()
    assert "@@" not in text
    needed_lines = ["proxy_buffering off;", "limit_req_status 429;", "ssl_certificate c.pem;", "listen 443 ssl;"]
    needed_lines += ["location = /metrics", "proxy_read_timeout 600s;", "server b:1 weight=100", "server g:1 down;"]
    for needed in needed_lines:
        assert needed in text, needed
    assert "$remote_addr" not in text.split("log_format", 1)[1].split(";", 1)[0]  # no client IP in access logs


def test_rollback_script_parses_and_reports_status(tmp_path):
    assert subprocess.run(["bash", "-n", str(DEPLOY / "rollback.sh")]).returncode == 0
    state = tmp_path / "live"
    state.write_text("green\n")
    env = {"PATH": "/usr/bin:/bin", "BLUEGREEN_STATE": str(state)}
    run = subprocess.run(["bash", str(DEPLOY / "rollback.sh"), "status"], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "green"
    bad = subprocess.run(["bash", str(DEPLOY / "rollback.sh"), "purple"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
