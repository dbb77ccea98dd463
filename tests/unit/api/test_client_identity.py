"""Client identity: X-Forwarded-For only from trusted proxies, IPv6 keyed per /64, the scheme from a trusted proxy."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.client_identity import client_ip, client_key, forwarded_proto, parse_networks
from core.resources import set_resources
from core.settings import get_settings
from fakes import fake_resources
from guards.audit import hash_ip

NGINX = parse_networks(["127.0.0.1/32", "10.0.0.0/8"])
Q = {"input": {"question": "Wat kost verzending?"}}


def scope(peer: str, *headers: tuple[str, str]) -> dict[str, object]:
    return {"client": (peer, 50000), "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers]}


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # An untrusted peer: its header is never believed, whatever it says.
        ("203.0.113.9", [("X-Forwarded-For", "6.6.6.6")], "203.0.113.9"),
        ("203.0.113.9", [], "203.0.113.9"),
        # nginx (trusted) overwrote the header with the client it saw.
        ("127.0.0.1", [("X-Forwarded-For", "198.51.100.4")], "198.51.100.4"),
        # Appended chain: the client wrote 6.6.6.6, a trusted balancer appended what it saw: the right-most
        # untrusted hop wins, the client-written one is ignored.
        ("127.0.0.1", [("X-Forwarded-For", "6.6.6.6, 198.51.100.4, 10.1.2.3")], "198.51.100.4"),
        # Two header lines are one list, in order (the last line's last hop is the nearest).
        ("127.0.0.1", [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.4")], "198.51.100.4"),
        # Garbage where the client should be, or only trusted hops: the peer itself.
        ("127.0.0.1", [("X-Forwarded-For", "6.6.6.6, not-an-ip")], "127.0.0.1"),
        ("127.0.0.1", [("X-Forwarded-For", "10.0.0.1, 10.0.0.2")], "127.0.0.1"),
        ("127.0.0.1", [], "127.0.0.1"),
        # A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6: still the trusted nginx.
        ("::ffff:127.0.0.1", [("X-Forwarded-For", "198.51.100.4")], "198.51.100.4"),
        ("127.0.0.1", [("X-Forwarded-For", "2001:DB8::1")], "2001:db8::1"),
    ],
)
def test_client_ip_believes_only_trusted_proxies(peer, headers, expected):
    assert client_ip(scope(peer, *headers), NGINX) == expected


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_ip(scope("127.0.0.1", ("X-Forwarded-For", "6.6.6.6")), []) == "127.0.0.1"
    assert client_ip({"headers": []}, NGINX) == "unknown"


def test_ipv6_is_keyed_per_64_and_ipv4_unchanged():
    one = client_key("2001:db8:1:2::5")
    assert one == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:ffff:ffff:ffff:1") == one  # same /64: same key
    assert client_key("2001:db8:1:3::5") != one  # the neighbouring /64
    assert client_key("2001:db8:1:2::5", 48) == client_key("2001:db8:1:3::5", 48) == "2001:db8:1::/48"
    assert client_key("2001:db8:1:2::5", 128) == "2001:db8:1:2::5/128"
    assert client_key("198.51.100.4") == "198.51.100.4"
    assert client_key("::ffff:198.51.100.4") == "198.51.100.4"
    assert client_key("unknown") == "unknown"


def test_forwarded_proto_only_from_a_trusted_peer():
    assert forwarded_proto(scope("127.0.0.1", ("X-Forwarded-Proto", "https")), NGINX) == "https"
    assert forwarded_proto(scope("203.0.113.9", ("X-Forwarded-Proto", "https")), NGINX) is None
    assert forwarded_proto(scope("127.0.0.1", ("X-Forwarded-Proto", "gopher")), NGINX) is None
    assert forwarded_proto(scope("127.0.0.1"), NGINX) is None


def test_bad_trusted_proxy_entry_is_an_error():
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.0/8", "nginx"])


def _client(tmp_path, monkeypatch, peer: str, **env: str) -> TestClient:
    monkeypatch.setenv("AUDIT_HMAC_KEY", "k" * 32)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    set_resources(fake_resources(tmp_path, *(["Verzending kost 4,95 euro."] * 10)))
    import server

    return TestClient(server.create_app(), client=(peer, 50000))


def _audit(tmp_path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]


def test_two_addresses_of_one_64_share_a_rate_limit_budget(tmp_path, monkeypatch):
    env = {"RATE_LIMIT_PER_MINUTE": "1", "TRUSTED_PROXIES": '["127.0.0.1/32"]'}
    with _client(tmp_path, monkeypatch, "127.0.0.1", **env) as c:
        via = lambda ip: c.post("/rag/invoke", json=Q, headers={"X-Forwarded-For": ip}).status_code  # noqa: E731
        codes = [via("2001:db8:1:2::5"), via("2001:db8:1:2::6"), via("2001:db8:1:3::5"), via("198.51.100.4")]
    assert codes == [200, 429, 200, 200]  # the second /64 address is the same client; another /64 is not
    lines = _audit(tmp_path)
    assert lines[0]["ip_hmac"] == lines[1]["ip_hmac"] == hash_ip("2001:db8:1:2::/64", b"k" * 32)
    assert lines[3]["ip_hmac"] == hash_ip("198.51.100.4", b"k" * 32)  # IPv4: the address itself, hashed
    raw = (tmp_path / "audit" / "audit.jsonl").read_text()
    assert "2001:db8" not in raw and "198.51.100.4" not in raw


def test_ipv6_prefix_len_setting(tmp_path, monkeypatch):
    env = {"RATE_LIMIT_PER_MINUTE": "1", "TRUSTED_PROXIES": '["127.0.0.1/32"]', "IPV6_PREFIX_LEN": "128"}
    with _client(tmp_path, monkeypatch, "127.0.0.1", **env) as c:
        codes = [
            c.post("/rag/invoke", json=Q, headers={"X-Forwarded-For": ip}).status_code
            for ip in ("2001:db8:1:2::5", "2001:db8:1:2::6")
        ]
    assert codes == [200, 200]  # one address per key: no /64 grouping


def test_spoofed_header_from_an_untrusted_peer_is_not_the_identity(tmp_path, monkeypatch):
    with _client(tmp_path, monkeypatch, "203.0.113.9", TRUSTED_PROXIES='["127.0.0.1/32"]') as c:
        c.get("/health", headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"})
    assert _audit(tmp_path)[0]["ip_hmac"] == hash_ip("203.0.113.9", b"k" * 32)


@pytest.mark.parametrize(("peer", "scheme"), [("127.0.0.1", "https"), ("203.0.113.9", "http")])
def test_the_scheme_comes_from_a_trusted_proxy_only(tmp_path, monkeypatch, peer, scheme):
    # uvicorn runs with --no-proxy-headers: the gate applies X-Forwarded-Proto itself, under TRUSTED_PROXIES.
    with _client(tmp_path, monkeypatch, peer, TRUSTED_PROXIES='["127.0.0.1/32"]') as c:
        r = c.get("/admin/backends/", headers={"X-Forwarded-Proto": "https"}, follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"].startswith(f"{scheme}://"), r.headers
