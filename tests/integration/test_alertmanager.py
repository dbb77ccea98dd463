"""A firing rule reaches someone: Debian's Prometheus → Debian's Alertmanager (the shipped routing) → a webhook.

The Alertmanager config is deploy/alertmanager/alertmanager.yml rendered by its own render.py with the receivers
pointed at a local webhook; its route tree and timers are the production ones (pages: group_wait 10 s, the rest
30 s), so the test takes ~35 s. Everything listens on 127.0.0.1; Alertmanager's clustering is off.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import yaml
from ops_tools import ROOT, require_binary, wait_http

from fakes_serving import free_port, stop_process

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
_spec = importlib.util.spec_from_file_location("alertmanager_render", ROOT / "deploy" / "alertmanager" / "render.py")
assert _spec is not None and _spec.loader is not None
am_render = importlib.util.module_from_spec(_spec)  # not `render`: ops_tools imports deploy/nginx/render.py so
_spec.loader.exec_module(am_render)

TEST_RULES = {
    "groups": [
        {
            "name": "alerting-test",
            "rules": [
                {"alert": "AlertingTestPage", "expr": "vector(1) > 0", "labels": {"severity": "page"}},
                {"alert": "AlertingTestTicket", "expr": "vector(1) > 0", "labels": {"severity": "warning"}},
            ],
        }
    ]
}


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[tuple[str, dict]]]]:
    """A local webhook on a free 127.0.0.1 port; yields its base URL and the (path, JSON body) of every POST."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running(cmd: list[str], log: Path, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` with its output in ``log`` until ``ready_url`` answers; stop it afterwards."""
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_http(ready_url, proc, log, timeout_s=60)
        yield proc
    finally:
        stop_process(proc, 20)


def _alerts(received: list[tuple[str, dict]], path: str) -> list[tuple[str, str]]:
    """(alertname, status) of every alert POSTed to ``path``."""
    return [(a["labels"]["alertname"], a["status"]) for p, body in received if p == path for a in body["alerts"]]


def test_a_firing_page_reaches_the_page_webhook_and_a_warning_does_not(tmp_path):
    alertmanager = require_binary("prometheus-alertmanager")
    prometheus = require_binary("prometheus")
    amtool = require_binary("amtool")

    with webhook_receiver() as (hook, received):
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            am_render.render({"ALERT_PAGE_WEBHOOK_URL": hook + "/page", "ALERT_TICKET_WEBHOOK_URL": hook + "/ticket"})
        )
        check = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
        assert check.returncode == 0 and "SUCCESS" in check.stdout, check.stdout + check.stderr
        for labels, receiver in (
            ("severity=page", "page"),
            ("severity=warning", "ticket"),
            ("severity=info", "ticket"),
        ):
            routes = subprocess.run(
                [amtool, "config", "routes", "test", f"--config.file={config}", "alertname=X", labels],
                capture_output=True,
                text=True,
            )
            assert routes.stdout.strip() == receiver, (labels, routes.stdout, routes.stderr)

        am_port, prom_port = free_port(), free_port()
        am_base = f"http://127.0.0.1:{am_port}"
        am_cmd = [
            alertmanager,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",  # clustering off: no gossip port at all
        ]
        (tmp_path / "test_rules.yml").write_text(yaml.safe_dump(TEST_RULES))
        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "test_rules.yml"), str(RULES)],  # the project's rules load beside them
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
        prom_cmd = [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            # Alerts of an evaluation before the notifier has discovered its Alertmanager are dropped
            # (prometheus_notifications_dropped_total) and sent again only after this delay (default 1 m).
            "--rules.alert.resend-delay=2s",
        ]
        with (
            running(am_cmd, tmp_path / "alertmanager.log", am_base + "/-/ready"),
            running(prom_cmd, tmp_path / "prometheus.log", f"http://127.0.0.1:{prom_port}/-/ready"),
        ):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if ("AlertingTestPage", "firing") in _alerts(received, "/page") and _alerts(received, "/ticket"):
                    break
                time.sleep(0.5)
            logs = "\n".join((tmp_path / f).read_text()[-2000:] for f in ("alertmanager.log", "prometheus.log"))
            assert ("AlertingTestPage", "firing") in _alerts(received, "/page"), (received, logs)
            assert ("AlertingTestTicket", "firing") in _alerts(received, "/ticket"), (received, logs)
            # The warning went to the ticket receiver only; the page receiver got the page alone.
            assert {name for name, _ in _alerts(received, "/page")} == {"AlertingTestPage"}, received
            assert {name for name, _ in _alerts(received, "/ticket")} == {"AlertingTestTicket"}, received
            page = next(body for p, body in received if p == "/page")
            assert page["receiver"] == "page" and page["status"] == "firing"
            assert page["commonLabels"]["severity"] == "page"

            # Prometheus loaded the project's rules with alerting on, and Alertmanager holds both alerts.
            groups = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=10).json()["data"]["groups"]
            loaded = {r["name"] for g in groups for r in g["rules"]}
            rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
            project = {r.get("alert") or r["record"] for r in rules}
            assert project <= loaded, project - loaded
            active = httpx.get(am_base + "/api/v2/alerts", timeout=10).json()
            assert {a["labels"]["alertname"] for a in active} == {"AlertingTestPage", "AlertingTestTicket"}
