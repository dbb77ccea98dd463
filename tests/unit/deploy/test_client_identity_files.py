"""Client identity and exposure in the deployment files: nginx render options, uvicorn flags, production mode."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
sys.path.insert(0, str(DEPLOY / "nginx"))
import render  # noqa: E402


def rendered(tmp_path: Path, *extra: str) -> str:
    out = tmp_path / "nginx.conf"
    render.main(["--blue", "b:1", "--green", "g:1", "--out", str(out), *extra])
    return out.read_text()


def block(text: str, start: str) -> str:
    """The ``{...}`` block that follows ``start``."""
    i = text.index(start)
    j = text.index("}", i)
    return text[i:j]


def test_log_format_has_no_full_client_address_query_string_or_thread_handle(tmp_path):
    text = rendered(tmp_path)
    log_format = text.split("log_format ops", 1)[1].split(";", 1)[0]
    for forbidden in ("$remote_addr", "$binary_remote_addr", "$realip_remote_addr", "$http_x_forwarded_for"):
        assert forbidden not in log_format, forbidden
    for forbidden in ("$request_uri", "$request ", "$args", "$query_string", "$uri"):  # $uri: the raw handle
        assert forbidden not in log_format + " ", forbidden
    assert "$client_net" in log_format and "$log_route" in log_format
    assert '~^/api/threads/ "/api/threads/{thread}";' in text.split("map $uri $log_route", 1)[1]
    assert "limit_req_log_level info;" in text  # those error-log lines carry the full address


def test_forwarded_for_is_overwritten_never_appended(tmp_path):
    for text in (rendered(tmp_path), rendered(tmp_path, "--real-ip-from", "10.0.0.0/8")):
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
        assert "$proxy_add_x_forwarded_for" not in text
        assert 'proxy_set_header Forwarded "";' in text


def test_real_ip_only_in_the_upstream_tls_mode(tmp_path):
    direct = rendered(tmp_path)
    assert "set_real_ip_from" not in direct and "real_ip_header" not in direct
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in direct
    upstream = rendered(tmp_path, "--real-ip-from", "10.0.0.0/8", "--real-ip-from", "192.0.2.7")
    for line in ("set_real_ip_from 10.0.0.0/8;", "set_real_ip_from 192.0.2.7/32;", "real_ip_header X-Forwarded-For;"):
        assert line in upstream
    assert "real_ip_recursive on;" in upstream
    assert "proxy_set_header X-Forwarded-Proto https;" in upstream
    # In the http block, before the server: limit_req keys and the log see the real client.
    assert upstream.index("real_ip_header") < upstream.index("limit_req_zone") < upstream.index("server {")


def test_operator_routes_default_to_loopback_only(tmp_path):
    text = rendered(tmp_path)
    loc = block(text, "location ~ ^/(admin|docs|redoc|openapi\\.json)(/|$)")
    assert re.findall(r"allow (\S+);", loc) == ["127.0.0.1/32", "::1/128"]
    assert "deny all;" in loc and "error_page 403 = @hidden;" in loc
    assert "error_page 429 = @too_many;" in loc  # not lost by the location's own error_page
    hidden = block(text, "location @hidden")
    assert "return 404" in hidden


def test_operator_allow_list_from_flags_or_environment(tmp_path, monkeypatch):
    text = rendered(tmp_path, "--operator-allow", "203.0.113.0/24")
    loc = block(text, "location ~ ^/(admin")
    assert re.findall(r"allow (\S+);", loc) == ["203.0.113.0/24"]
    monkeypatch.setenv("NGINX_OPERATOR_ALLOW", "198.51.100.7 2001:db8::/48")
    monkeypatch.setenv("NGINX_REAL_IP_FROM", "10.0.0.0/8")
    text = rendered(tmp_path)  # what deploy/rollback.sh does at every flip: no flags, the environment
    assert re.findall(r"allow (\S+);", block(text, "location ~ ^/(admin")) == ["198.51.100.7/32", "2001:db8::/48"]
    assert "set_real_ip_from 10.0.0.0/8;" in text


def test_bad_cidrs_are_refused():
    with pytest.raises(ValueError, match="operator allow-list"):
        render.operator_allow_lines(["everyone"])
    with pytest.raises(ValueError, match="real_ip"):
        render.real_ip_lines(["10.0.0.0/33"])
    assert render.operator_allow_lines([]).strip() == "deny all;"  # an empty list: nobody


def test_uvicorn_never_trusts_forwarded_headers_itself():
    cmd = next(line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    assert "--forwarded-allow-ips" not in cmd and '"*"' not in cmd
    assert '"--no-proxy-headers"' in cmd and '"--no-access-log"' in cmd
    unit = (DEPLOY / "systemd" / "shop-assistant-api@.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    apictl = next(line for line in (DEPLOY / "apictl.sh").read_text().splitlines() if "uvicorn server:app" in line)
    for line in (exec_start, apictl):
        words = shlex.split(line.replace("'", " "))
        assert "--no-proxy-headers" in words and "--no-access-log" in words, line


def test_compose_runs_production_mode_and_requires_every_secret():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name in ("api-blue", "api-green"):
        env = compose["services"][name]["environment"]
        assert env["APP_ENV"] == "production"
        for secret in ("ADMIN_TOKEN", "THREAD_HMAC_KEY", "AUDIT_HMAC_KEY", "PROMPT_CANARY"):
            assert env[secret].startswith(f"${{{secret}:?"), (name, secret)  # compose fails loudly when unset


def test_env_example_documents_every_new_setting():
    text = (ROOT / ".env.example").read_text()
    for name in ("APP_ENV", "TRUSTED_PROXIES", "IPV6_PREFIX_LEN", "AUDIT_HMAC_KEY", "PROMPT_CANARY"):
        assert re.search(rf"^# {name}=", text, re.M), name
    for name in ("NGINX_OPERATOR_ALLOW", "NGINX_REAL_IP_FROM"):
        assert name in text, name
