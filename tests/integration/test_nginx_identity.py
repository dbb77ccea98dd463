"""Client identity and exposure through Debian's real nginx (issue #17, items 4 and 7).

The app runs as in production: real uvicorn with ``--no-proxy-headers`` (``proxy_headers=False``), so only the
app's ``TRUSTED_PROXIES`` (the loopback nginx) decides whom to believe. What the app took as the client is read
from its audit line (the keyed HMAC of the client key), compared with the HMAC of the address expected.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from ops_tools import nginx_cmd, nginx_conf, require_binary, running_nginx

from core.resources import set_resources
from core.settings import get_settings
from fakes import fake_resources
from fakes_serving import free_port
from guards.audit import hash_ip

KEY = "nginx-identity-audit-key-0123456789"
TOKEN = "nginx-identity-admin-token-0123456789abc"
HANDLE = "t1.HANDLEnotInAnyLog0123456789"
LOG_LINE = re.compile(r'^\[[^\]]+\] (?P<client>\S+) "(?P<method>\S+) (?P<route>[^"]*)" (?P<status>\d+) \S+ up=\S+$')


@contextmanager
def serve_like_production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real app on real uvicorn without proxy headers or access log (the Dockerfile's flags); its host:port."""
    monkeypatch.setenv("TRUSTED_PROXIES", '["127.0.0.1/32"]')
    monkeypatch.setenv("AUDIT_HMAC_KEY", KEY)
    monkeypatch.setenv("ADMIN_TOKEN", TOKEN)
    get_settings.cache_clear()
    set_resources(fake_resources(tmp_path))
    import server

    port = free_port()
    config = uvicorn.Config(
        server.create_app(), host="127.0.0.1", port=port, log_level="warning", proxy_headers=False, access_log=False
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=15)


def seen_as(tmp_path: Path, request_id: str, wait_s: float = 3.0) -> str | None:
    """The audit line's ip_hmac of ``request_id``; None if none (waits ``wait_s``: a queue thread writes them)."""
    path = tmp_path / "audit" / "audit.jsonl"
    deadline = time.monotonic() + wait_s
    while True:
        for line in path.read_text().splitlines() if path.exists() else []:
            rec = json.loads(line)
            if rec.get("request_id") == request_id:
                return str(rec["ip_hmac"])
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def expected(key: str) -> str:
    return hash_ip(key, KEY.encode())


def reload(nginx: str, prefix: Path, listen: str, upstream: str, **identity: tuple[str, ...]) -> None:
    """Re-render with other identity options, ``nginx -t``, reload (what deploy/rollback.sh does)."""
    nginx_conf(prefix, listen, upstream, upstream, (100, 0), **identity)
    subprocess.run(nginx_cmd(nginx, prefix, "-t", "-q"), check=True)
    subprocess.run(nginx_cmd(nginx, prefix, "-s", "reload"), check=True)
    time.sleep(1.0)  # the old workers finish; new ones run the new config


def test_identity_operator_allow_list_and_access_log_through_nginx(tmp_path, monkeypatch):
    nginx = require_binary("nginx")
    prefix = tmp_path / "nginx"
    port = free_port()
    listen, base = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    with serve_like_production(tmp_path, monkeypatch) as upstream:
        nginx_conf(prefix, listen, upstream, upstream, (100, 0))  # direct mode, operators: loopback
        with running_nginx(nginx, prefix, base + "/health"), httpx.Client(base_url=base, timeout=10) as client:

            def get(path: str, rid: str, **headers: str) -> httpx.Response:
                return client.get(path, headers={"X-Request-ID": rid, **headers})

            # 1. Direct mode: a client-written X-Forwarded-For is overwritten by nginx with the socket peer.
            get("/health", "direct-spoof", **{"X-Forwarded-For": "6.6.6.6"})
            assert seen_as(tmp_path, "direct-spoof") == expected("127.0.0.1")

            # 2. Operator routes are served to an allow-listed peer (loopback) and reach the app.
            assert get("/openapi.json", "ops-openapi").status_code == 200
            assert get("/docs", "ops-docs").status_code == 200
            admin = get("/admin/emergency-stop", "ops-admin", Authorization=f"Bearer {TOKEN}")
            assert admin.status_code == 200, admin.text
            assert seen_as(tmp_path, "ops-admin") is not None

            # 3. A conversation handle in the path and a query string: served, but never logged by nginx.
            assert get(f"/api/threads/{HANDLE}?secret=QUERYSECRET", "thread-handle").status_code == 404

            # 4. TLS terminated upstream: the test client is the load balancer at 127.0.0.1; it appended the
            #    address it saw (203.0.113.7) to a header the client wrote (6.6.6.6): the appended one counts.
            reload(nginx, prefix, listen, upstream, real_ip_from=("127.0.0.1/32",))
            get("/health", "lb-append", **{"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
            assert seen_as(tmp_path, "lb-append") == expected("203.0.113.7")
            get("/health", "lb-ipv6-client", **{"X-Forwarded-For": "2001:db8:1:2::5"})  # IPv6: keyed per /64
            assert seen_as(tmp_path, "lb-ipv6-client") == expected("2001:db8:1:2::/64")

            # 5. The same mode, but the peer is not one of the load balancers: its header is a spoof, ignored.
            #    And the operator allow-list excludes it: nginx refuses the operator routes (the app never sees
            #    them, so no audit line), everything else is unchanged.
            reload(nginx, prefix, listen, upstream, real_ip_from=("10.0.0.0/8",), operator_allow=("10.0.0.0/8",))
            get("/health", "untrusted-spoof", **{"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
            assert seen_as(tmp_path, "untrusted-spoof") == expected("127.0.0.1")
            paths = ("/openapi.json", "/docs", "/redoc", "/admin/emergency-stop", "/admin/rag/playground/")
            for i, path in enumerate(paths):
                refused = get(path, f"refused-{i:04d}", Authorization=f"Bearer {TOKEN}")
                assert refused.status_code == 404 and refused.json() == {"error": "not found"}, path
            assert get("/health", "still-public").status_code == 200
            assert seen_as(tmp_path, "still-public") is not None  # audit lines of this phase are written...
            assert all(seen_as(tmp_path, f"refused-{i:04d}", 0) is None for i in range(len(paths)))  # ...not these

    lines = (prefix / "logs" / "access.log").read_text().splitlines()
    parsed = [LOG_LINE.match(line) for line in lines]
    assert lines and all(parsed), [line for line, m in zip(lines, parsed, strict=True) if not m]
    clients = {m["client"] for m in parsed if m}
    assert clients == {"127.0.0.0/24", "203.0.113.0/24", "2001:db8:1::/48"}, clients
    without_upstream = "\n".join(line.rsplit(" up=", 1)[0] for line in lines)  # up= is the API's own address
    for leaked in ("127.0.0.1", "203.0.113.7", "6.6.6.6", "2001:db8:1:2", HANDLE, "QUERYSECRET", "?"):
        assert leaked not in without_upstream, leaked
    assert any(m and m["route"] == "/api/threads/{thread}" for m in parsed)
