#!/usr/bin/env python3
"""Render deploy/nginx/nginx.conf.template (standard library only: runs on a bare host).

    python3 deploy/nginx/render.py --blue api-blue:8000 --green api-green:8000 --weights 100/0 \
        --listen "443 ssl" --tls-cert /etc/ssl/shop.crt --tls-key /etc/ssl/shop.key --out /etc/nginx/nginx.conf

``--weights BLUE/GREEN`` (0..100 each, not both 0): a weight of 0 renders that deployment's servers as
``down``, so the flip is one re-render plus ``nginx -s reload`` (deploy/rollback.sh does both).

Client identity and exposure (docs/operations.md, "Client identity and exposure"):

* ``--operator-allow CIDR`` (repeatable; default ``NGINX_OPERATOR_ALLOW``, space-separated, else loopback only):
  the only addresses nginx serves ``/admin``, ``/docs``, ``/redoc`` and ``/openapi.json`` to; others get 404.
* ``--real-ip-from CIDR`` (repeatable; default ``NGINX_REAL_IP_FROM``): TLS is terminated upstream of this
  nginx by a load balancer at these addresses; nginx takes the client from their ``X-Forwarded-For``
  (``real_ip``). Without it, the socket peer is the client. Either way nginx overwrites ``X-Forwarded-For``
  toward the API with the one client address it settled on.

Both are read from the environment too, so that deploy/rollback.sh keeps them at every flip.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
DEFAULT_OPERATOR_ALLOW = ("127.0.0.1/32", "::1/128")


def upstream_servers(blue: list[str], green: list[str], weights: tuple[int, int]) -> str:
    """``server`` lines for both deployments; weight 0 becomes ``down``."""
    if not (blue and green):
        raise ValueError("both deployments need at least one server")
    if min(weights) < 0 or max(weights) > 100 or sum(weights) == 0:
        raise ValueError(f"weights must be 0..100 and not both 0, got {weights}")
    lines = []
    for servers, weight, color in ((blue, weights[0], "blue"), (green, weights[1], "green")):
        for server in servers:
            state = f"weight={weight} max_fails=3 fail_timeout=10s" if weight else "down"
            lines.append(f"        server {server} {state};  # {color}")
    return "\n".join(lines)


def render(values: dict[str, str], template: str | None = None) -> str:
    """Fill every ``@@NAME@@``; a missing value is an error (never a half-rendered config)."""
    text = template if template is not None else TEMPLATE.read_text(encoding="utf-8")
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def tls_lines(cert: str | None, key: str | None) -> str:
    """TLS termination: certificate lines, or a comment when TLS is terminated elsewhere (tests, a load balancer)."""
    if not cert or not key:
        return "        # TLS: terminated upstream of this nginx (no --tls-cert/--tls-key given)."
    return (
        f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_session_cache shared:tls:10m;"
    )


def _cidrs(values: list[str], what: str) -> list[str]:
    """Validated CIDRs (a bare address is a /32 or /128), normalised; a bad one is an error."""
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError as exc:
            raise ValueError(f"{what}: not an address or network: {value!r}") from exc
    return out


def operator_allow_lines(cidrs: list[str]) -> str:
    """``allow`` lines for the operator routes, then ``deny all`` (an empty list: nobody, not everybody)."""
    lines = [f"            allow {c};" for c in _cidrs(cidrs, "operator allow-list")]
    return "\n".join([*lines, "            deny all;"])


def real_ip_lines(upstream: list[str]) -> str:
    """``real_ip`` for TLS terminated by a load balancer at ``upstream``; a comment when there is none."""
    if not upstream:
        return "    # Client address: the socket peer (no --real-ip-from: nothing in front of this nginx is trusted)."
    lines = [
        "    # TLS terminated upstream: the client is the right-most X-Forwarded-For entry not added by one of",
        "    # these load balancers; whatever a client wrote further left is ignored.",
        *(f"    set_real_ip_from {c};" for c in _cidrs(upstream, "real_ip upstream list")),
        "    real_ip_header X-Forwarded-For;",
        "    real_ip_recursive on;",
    ]
    return "\n".join(lines)


def identity_values(operator_allow: list[str], real_ip_from: list[str]) -> dict[str, str]:
    """The template values of the client-identity and exposure options."""
    return {
        "REAL_IP": real_ip_lines(real_ip_from),
        "OPERATOR_ALLOW": operator_allow_lines(operator_allow),
        # The load balancer took the request over TLS; without one, nginx's own scheme.
        "FORWARDED_PROTO": "https" if real_ip_from else "$scheme",
    }


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name, "").replace(",", " ").split()
    return value or None


def main(argv: list[str] | None = None) -> None:
    """Render the config to ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blue", action="append", required=True, help="host:port of a blue API server (repeatable)")
    p.add_argument("--green", action="append", required=True, help="host:port of a green API server (repeatable)")
    p.add_argument("--weights", default="100/0", help="BLUE/GREEN weights, e.g. 100/0 or 0/100")
    p.add_argument("--listen", default="80", help='nginx listen argument, e.g. "443 ssl" or 127.0.0.1:8080')
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--state-dir", default="/var/lib/nginx", help="pid file and temp folders")
    p.add_argument("--log-dir", default="/var/log/nginx")
    p.add_argument("--rate", default="20r/s", help="per-IP request rate, all routes")
    p.add_argument("--burst", default="40")
    p.add_argument("--ask-rate", default="2r/s", help="per-IP rate of the LLM endpoints (/rag, /api, /v1)")
    p.add_argument("--ask-burst", default="10")
    p.add_argument(
        "--operator-allow",
        action="append",
        metavar="CIDR",
        help="may reach /admin, /docs, /redoc, /openapi.json (repeatable; env NGINX_OPERATOR_ALLOW)",
    )
    p.add_argument(
        "--real-ip-from",
        action="append",
        metavar="CIDR",
        help="TLS terminated upstream: the load balancers' addresses (repeatable; env NGINX_REAL_IP_FROM)",
    )
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    operator_allow = a.operator_allow or _env_list("NGINX_OPERATOR_ALLOW") or list(DEFAULT_OPERATOR_ALLOW)
    real_ip_from = a.real_ip_from or _env_list("NGINX_REAL_IP_FROM") or []
    blue_w, green_w = (int(x) for x in a.weights.split("/"))
    values = {
        "UPSTREAM_SERVERS": upstream_servers(a.blue, a.green, (blue_w, green_w)),
        "LISTEN": a.listen,
        "TLS": tls_lines(a.tls_cert, a.tls_key),
        "STATE_DIR": a.state_dir,
        "LOG_DIR": a.log_dir,
        "RATE": a.rate,
        "BURST": a.burst,
        "ASK_RATE": a.ask_rate,
        "ASK_BURST": a.ask_burst,
        **identity_values(operator_allow, real_ip_from),
    }
    a.out.write_text(render(values), encoding="utf-8")


if __name__ == "__main__":
    main()
