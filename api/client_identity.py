"""Who the client is: the socket peer, or what a trusted proxy says, and the key its rate limits count under.

One parser for the whole service: uvicorn runs with ``--no-proxy-headers`` (deploy/Dockerfile, the systemd unit,
deploy/apictl.sh), so ``scope["client"]`` is always the real socket peer and only ``TRUSTED_PROXIES`` decides
whether ``X-Forwarded-For`` is believed. nginx overwrites that header with its own ``$remote_addr`` (after its
``real_ip`` step in the "TLS terminated upstream" mode), so a header a client wrote never arrives here as is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(cidrs: Iterable[str]) -> list[Network]:
    """``TRUSTED_PROXIES`` entries as networks (a bare address is a /32 or /128); a bad entry raises ValueError."""
    return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs]


def _address(text: str) -> Address | None:
    """The address, an IPv4-mapped IPv6 one (``::ffff:a.b.c.d``, dual-stack sockets) as IPv4; None if not one."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Address | None, trusted: list[Network]) -> bool:
    return addr is not None and any(addr in net for net in trusted)


def _forwarded_for(scope: Scope) -> list[str]:
    """Every ``X-Forwarded-For`` hop in order; several header lines are one list (RFC 9110, 5.3)."""
    hops: list[str] = []
    for name, value in scope.get("headers") or []:
        if name == b"x-forwarded-for":
            hops += [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
    return hops


def client_ip(scope: Scope, trusted: list[Network]) -> str:
    """The socket peer, or, only when the peer is a trusted proxy, the right-most untrusted X-Forwarded-For hop.

    Walking from the right, every hop a trusted proxy added is skipped; the first one no trusted proxy vouches
    for is the client. Anything left of it was written by the client and is never believed. A malformed hop
    there, or a header of trusted hops only, gives the peer itself.
    """
    raw_peer = str((scope.get("client") or ("unknown", 0))[0])
    peer = _address(raw_peer)
    peer_text = str(peer) if peer is not None else raw_peer
    if not trusted or not _trusted(peer, trusted):
        return peer_text
    for hop in reversed(_forwarded_for(scope)):
        addr = _address(hop)
        if addr is None:
            return peer_text
        if not _trusted(addr, trusted):
            return str(addr)
    return peer_text


def forwarded_proto(scope: Scope, trusted: list[Network]) -> str | None:
    """``X-Forwarded-Proto`` (http or https) when the peer is a trusted proxy, else None.

    What uvicorn's ``--proxy-headers`` did for the scheme, under the same trust rule as ``client_ip``: behind
    nginx terminating TLS, redirects and absolute URLs the app builds stay ``https``.
    """
    raw_peer = str((scope.get("client") or ("unknown", 0))[0])
    if not trusted or not _trusted(_address(raw_peer), trusted):
        return None
    values = [v for n, v in scope.get("headers") or [] if n == b"x-forwarded-proto"]
    proto = values[-1].decode("latin-1").split(",")[-1].strip().lower() if values else ""
    return proto if proto in ("http", "https") else None


def client_key(ip: str, ipv6_prefix_len: int = 64) -> str:
    """What rate limits and the audit HMAC count under: an IPv4 address itself, an IPv6 address's network.

    ``2001:db8:1:2::5`` and ``2001:db8:1:2:ffff::1`` share ``2001:db8:1:2::/64`` (one customer's /64: picking
    another address in it must not buy a fresh budget). Anything that is not an address stays as it is.
    """
    addr = _address(ip)
    if addr is None:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{addr}/{ipv6_prefix_len}", strict=False))
    return str(addr)
