"""Alerting files: compose runs Alertmanager, Prometheus sends to it, pages are routed to the operator's receiver."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "alertmanager" / "alertmanager.yml"
_spec = importlib.util.spec_from_file_location("alertmanager_render", DEPLOY / "alertmanager" / "render.py")
assert _spec is not None and _spec.loader is not None
am_render = importlib.util.module_from_spec(_spec)  # not `render`: deploy/nginx/render.py is imported under that name
_spec.loader.exec_module(am_render)

PAGE_URL = "https://hooks.example.org/page?token=abc"
SMTP = {"ALERT_SMTP_SMARTHOST": "smtp.example.org:587", "ALERT_SMTP_FROM": "am@example.org"}


def _receiver_of(route: dict, labels: dict[str, str]) -> str:
    """The receiver Alertmanager picks for ``labels`` (first matching child route; only `name="value"` matchers)."""
    for child in route.get("routes", []):
        pairs = [m.split("=", 1) for m in child.get("matchers", [])]
        assert all('"' in v and "!" not in k and "~" not in k for k, v in pairs), child  # equality matchers only
        if all(labels.get(k.strip()) == v.strip().strip('"') for k, v in pairs) and not child.get("continue"):
            return _receiver_of(child, labels) if child.get("routes") else child["receiver"]
    return route["receiver"]


def test_compose_runs_alertmanager_unpublished_with_the_rendered_config():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    am = services["alertmanager"]
    image, tag = am["image"].split(":")
    assert image == "prom/alertmanager" and tag.startswith("v") and tag != "latest"
    assert "ports" not in am
    assert "--cluster.listen-address=" in am["command"]  # one instance: no gossip port
    assert "alertmanager-config:/etc/alertmanager/rendered:ro" in am["volumes"]
    assert "--config.file=/etc/alertmanager/rendered/alertmanager.yml" in am["command"]
    assert any(v.startswith("alertmanager:/") for v in am["volumes"])  # silences and notification log persist
    assert set(am["networks"]) == {"backend", "alerts-out"}
    assert compose["networks"]["alerts-out"].get("internal") is not True  # the receivers are outside
    assert am["depends_on"] == {"alertmanager-config": {"condition": "service_completed_successfully"}}
    assert "alertmanager" in services["prometheus"]["depends_on"]
    assert {"alertmanager", "alertmanager-config"} <= set(compose["volumes"])

    job = services["alertmanager-config"]
    assert job["network_mode"] == "none" and "ports" not in job
    assert "./alertmanager:/src:ro" in job["volumes"]
    assert "python3 /src/render.py --out /config/alertmanager.yml" in " ".join(job["command"])
    env = job["environment"]
    for name in ("ALERT_PAGE_WEBHOOK_URL", "ALERT_PAGE_EMAIL_TO", "ALERT_SMTP_PASSWORD", "ALERT_TICKET_WEBHOOK_URL"):
        assert env[name].startswith(f"${{{name}"), name
    example = (ROOT / ".env.example").read_text()
    assert all(f"# {name}=" in example for name in env), [n for n in env if f"# {n}=" not in example]


def test_prometheus_sends_alerts_to_the_alertmanager_service():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]


def test_every_alert_has_a_severity_and_pages_reach_the_page_receiver():
    route = yaml.safe_load(TEMPLATE.read_text())["route"]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
    alerts = [r for g in rules for r in g["rules"] if "alert" in r]
    assert alerts
    severities = {a["alert"]: a.get("labels", {}).get("severity") for a in alerts}
    assert set(severities.values()) <= {"page", "warning", "info"}, severities
    assert "page" in severities.values()
    for name, severity in severities.items():
        expected = "page" if severity == "page" else "ticket"
        assert _receiver_of(route, {"alertname": name, "severity": severity, "job": "x"}) == expected, name
    assert route["routes"][0]["matchers"] == ['severity="page"']
    assert {"alertname"} <= set(route["group_by"])
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert key in route and key in route["routes"][0], key


def test_render_refuses_pages_that_reach_nobody_and_bad_settings():
    with pytest.raises(ValueError, match="ALERT_PAGE_WEBHOOK_URL"):
        am_render.render({})
    with pytest.raises(ValueError, match="ALERT_PAGE_WEBHOOK_URL"):
        am_render.render({"ALERT_TICKET_WEBHOOK_URL": PAGE_URL})  # only tickets: pages would still go nowhere
    with pytest.raises(ValueError, match="http"):
        am_render.render({"ALERT_PAGE_WEBHOOK_URL": "hooks.example.org/page"})
    with pytest.raises(ValueError, match="SMARTHOST"):
        am_render.render({"ALERT_PAGE_EMAIL_TO": "oncall@example.org"})
    with pytest.raises(ValueError, match="mail addresses"):
        am_render.render({"ALERT_PAGE_EMAIL_TO": "oncall", **SMTP})
    with pytest.raises(ValueError, match="marker"):
        am_render.render({"ALERT_PAGE_WEBHOOK_URL": PAGE_URL}, "route: {receiver: page}\n")


def test_render_fills_the_receivers_and_keeps_the_routing():
    env = {
        "ALERT_PAGE_WEBHOOK_URL": PAGE_URL,
        "ALERT_PAGE_EMAIL_TO": "oncall@example.org, second@example.org",
        "ALERT_SMTP_PASSWORD": 'se"cret: #1',
        **SMTP,
    }
    rendered = yaml.safe_load(am_render.render(env))
    assert rendered["route"] == yaml.safe_load(TEMPLATE.read_text())["route"]
    receivers = {r["name"]: r for r in rendered["receivers"]}
    assert receivers["page"]["webhook_configs"] == [{"url": PAGE_URL, "send_resolved": True}]
    (mail,) = receivers["page"]["email_configs"]
    assert mail["to"] == "oncall@example.org, second@example.org" and mail["from"] == "am@example.org"
    assert mail["smarthost"] == "smtp.example.org:587" and mail["require_tls"] is True
    assert mail["auth_password"] == 'se"cret: #1'  # quoted: YAML specials in a secret stay a string
    assert receivers["ticket"] == {"name": "ticket"}  # a "null" receiver: visible in the UI only

    with_ticket = yaml.safe_load(am_render.render({**env, "ALERT_TICKET_WEBHOOK_URL": "http://tickets:8080/hook"}))
    tickets = {r["name"]: r for r in with_ticket["receivers"]}["ticket"]
    assert tickets["webhook_configs"][0]["url"] == "http://tickets:8080/hook"


def test_main_writes_the_config_private(tmp_path, monkeypatch, capsys):
    for name in list(os.environ):
        if name.startswith("ALERT_"):
            monkeypatch.delenv(name)
    out = tmp_path / "alertmanager.yml"
    assert am_render.main(["--out", str(out)]) == 2
    assert "ALERT_PAGE_WEBHOOK_URL" in capsys.readouterr().err and not out.exists()
    monkeypatch.setenv("ALERT_PAGE_WEBHOOK_URL", PAGE_URL)
    assert am_render.main(["--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert PAGE_URL in out.read_text()
