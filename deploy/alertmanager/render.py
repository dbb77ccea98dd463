#!/usr/bin/env python3
"""Render deploy/alertmanager/alertmanager.yml with the operator's receivers (standard library only).

    ALERT_PAGE_WEBHOOK_URL=https://hooks.example.org/page python3 deploy/alertmanager/render.py --out am.yml

Alertmanager expands no environment variables in its config, so the receivers are written in here, from:

* ``ALERT_PAGE_WEBHOOK_URL`` and/or ``ALERT_PAGE_EMAIL_TO``: where ``severity="page"`` alerts go. At least one
  is required: a page that reaches nobody is the failure this file exists to prevent, so rendering stops.
* ``ALERT_TICKET_WEBHOOK_URL`` / ``ALERT_TICKET_EMAIL_TO`` (optional): every other alert (warning, info);
  without them those alerts are only visible in the Alertmanager UI, ``amtool alert`` and Prometheus.
* Mail (when an ``*_EMAIL_TO`` is set): ``ALERT_SMTP_SMARTHOST`` (host:port) and ``ALERT_SMTP_FROM``, required;
  ``ALERT_SMTP_USERNAME``, ``ALERT_SMTP_PASSWORD`` and ``ALERT_SMTP_REQUIRE_TLS`` (default true), optional.

The output holds the webhook URLs and the SMTP password: it is written with mode 0600. In compose the service
``alertmanager-config`` runs this at every ``up`` (docs/operations.md, "Where alerts go").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

TEMPLATE = Path(__file__).with_name("alertmanager.yml")
MARKER = re.compile(r"^(?P<indent> *)# @@(?P<name>PAGE|TICKET)_RECEIVER@@.*$", re.MULTILINE)
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+$")


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def _webhook_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL, got {url!r}")
    return url


def _addresses(name: str, value: str) -> str:
    addresses = [a.strip() for a in value.split(",") if a.strip()]
    bad = [a for a in addresses if not EMAIL.match(a)]
    if not addresses or bad:
        raise ValueError(f"{name} must be one or more comma-separated mail addresses, got {value!r}")
    return ", ".join(addresses)


def _email_lines(name: str, to: str, env: Mapping[str, str]) -> list[str]:
    smarthost, sender = env.get("ALERT_SMTP_SMARTHOST", "").strip(), env.get("ALERT_SMTP_FROM", "").strip()
    if not re.fullmatch(r"[^\s:]+:\d+", smarthost):
        raise ValueError(f"{name} is set: ALERT_SMTP_SMARTHOST must be host:port, got {smarthost!r}")
    require_tls = env.get("ALERT_SMTP_REQUIRE_TLS", "true").strip().lower()
    if require_tls not in ("true", "false"):
        raise ValueError(f"ALERT_SMTP_REQUIRE_TLS must be true or false, got {require_tls!r}")
    lines = [
        "email_configs:",
        f"  - to: {_q(_addresses(name, to))}",
        f"    from: {_q(_addresses('ALERT_SMTP_FROM', sender))}",
        f"    smarthost: {_q(smarthost)}",
        f"    require_tls: {require_tls}",
        "    send_resolved: true",
    ]
    if env.get("ALERT_SMTP_USERNAME"):
        lines.append(f"    auth_username: {_q(env['ALERT_SMTP_USERNAME'])}")
    if env.get("ALERT_SMTP_PASSWORD"):
        lines.append(f"    auth_password: {_q(env['ALERT_SMTP_PASSWORD'])}")
    return lines


def receiver_lines(kind: str, env: Mapping[str, str]) -> list[str]:
    """The ``webhook_configs``/``email_configs`` of receiver ``kind`` (PAGE or TICKET), unindented; [] if none."""
    lines: list[str] = []
    url = env.get(f"ALERT_{kind}_WEBHOOK_URL", "").strip()
    if url:
        lines += [
            "webhook_configs:",
            f"  - url: {_q(_webhook_url(f'ALERT_{kind}_WEBHOOK_URL', url))}",
            "    send_resolved: true",
        ]
    to = env.get(f"ALERT_{kind}_EMAIL_TO", "").strip()
    if to:
        lines += _email_lines(f"ALERT_{kind}_EMAIL_TO", to, env)
    return lines


def render(env: Mapping[str, str], template: str | None = None) -> str:
    """The template with both receivers filled from ``env``; ValueError when pages would reach nobody."""
    text = template if template is not None else TEMPLATE.read_text(encoding="utf-8")
    receivers = {kind: receiver_lines(kind, env) for kind in ("PAGE", "TICKET")}
    if not receivers["PAGE"]:
        raise ValueError("set ALERT_PAGE_WEBHOOK_URL and/or ALERT_PAGE_EMAIL_TO: severity=page alerts need a receiver")
    if sorted(m.group("name") for m in MARKER.finditer(text)) != ["PAGE", "TICKET"]:
        raise ValueError("the template must hold one @@PAGE_RECEIVER@@ and one @@TICKET_RECEIVER@@ marker")

    def fill(match: re.Match[str]) -> str:
        lines = receivers[match.group("name")]
        if not lines:
            return match.group(0)  # no receiver configs: a "null" receiver, the marker comment stays
        return "\n".join(match.group("indent") + line for line in lines)

    return MARKER.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    """Render to ``--out`` (mode 0600, replaced atomically) from the environment."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="where to write the rendered config")
    args = parser.parse_args(argv)
    try:
        text = render(os.environ)
    except ValueError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    tmp = args.out.with_name(args.out.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
