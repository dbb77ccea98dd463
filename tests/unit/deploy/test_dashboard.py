"""The Grafana dashboard and the Prometheus rules only query metrics that the API or vLLM export."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "shop-assistant.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
VLLM_LIST = ROOT / "deploy" / "vllm" / "metrics.txt"
PROMETHEUS_OWN = {"up"}  # synthesised by Prometheus for every target

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan",
}  # fmt: skip
SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def _builder():
    spec = importlib.util.spec_from_file_location("dashboard_builder", ROOT / "deploy" / "grafana" / "dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[m.end() :].lstrip()
        if rest.startswith("(") or m.group(0).lower() in PROMQL_WORDS:
            continue
        names.add(m.group(0))
    return names


def exported_by_service() -> set[str]:
    """Every series name the service's registry can produce (families with no children yet included)."""
    import api.observability  # noqa: F401  (the modules that update metrics import core.metrics)
    import core.metrics  # noqa: F401
    import server  # noqa: F401

    names = set()
    for family in REGISTRY.collect():
        base = family.name
        names.add(base)
        if family.type == "counter":
            names.update({base + "_total", base + "_created"})
        if family.type == "histogram":
            names.update(base + s for s in ("_bucket", "_sum", "_count", "_created"))
    return names


def exported_by_vllm() -> set[str]:
    """The captured list of vLLM's metric families, expanded to their series names."""
    names = set()
    for line in VLLM_LIST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names.update(name + s for s in ("_bucket", "_sum", "_count"))
            if kind == "counter" and not name.endswith("_total"):
                names.add(name + "_total")
    return names


def recording_rules() -> dict[str, str]:
    """Recorded series name → its expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["record"]: r["expr"] for g in groups for r in g["rules"] if "record" in r}


def unknown_metrics(expr: str, known: set[str], records: dict[str, str]) -> set[str]:
    """Names in ``expr`` that nobody exports, following recording rules to their own expressions."""
    missing = set()
    for name in metric_names(expr):
        if name in records:
            missing |= unknown_metrics(records[name], known, records)
        elif name not in known:
            missing.add(name)
    return missing


def _queries(board: dict) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in board["panels"] if p["type"] != "row" for t in p.get("targets", [])]


def test_metric_name_parser():
    expr = (
        'histogram_quantile(0.95, sum by (le, job) (rate(shop_assistant_x_bucket{route!~"/a|/b",le="+Inf"}[5m])))'
        " / ignoring (backend) group_left sum(vllm:num_requests_running) and on (job) up == 0"
    )
    assert metric_names(expr) == {"shop_assistant_x_bucket", "vllm:num_requests_running", "up"}


def test_committed_dashboard_is_the_builders_output():
    committed = json.loads(DASHBOARD.read_text())
    assert committed == _builder().build(), "stale dashboard JSON: run `make dashboard`"


def test_dashboard_round_trips_through_grafanas_schema_models():
    """The SDK's models are generated from Grafana's dashboard schema: unknown or mistyped fields do not survive."""
    register_default_plugins()
    committed = json.loads(DASHBOARD.read_text())
    model = Dashboard.from_json(committed)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == committed
    assert committed["uid"] == "shop-assistant" and isinstance(committed["schemaVersion"], int)
    ids = [p["id"] for p in committed["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in committed["panels"]:
        assert panel["type"] in {"row", "stat", "timeseries"}
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]


def test_every_dashboard_query_uses_an_exported_metric():
    known = exported_by_service() | exported_by_vllm() | PROMETHEUS_OWN
    records = recording_rules()
    queries = _queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) >= 20
    problems = {title: sorted(m) for title, expr in queries if (m := unknown_metrics(expr, known, records))}
    assert not problems, problems
    used = {n for _, expr in queries for n in metric_names(expr)}
    for required in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"):
        assert required in used


@pytest.mark.parametrize("kind", ["record", "alert"])
def test_every_rule_uses_an_exported_metric(kind):
    known = exported_by_service() | exported_by_vllm() | PROMETHEUS_OWN | {"process_start_time_seconds"}
    records = recording_rules()
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if kind in r]
    assert rules
    problems = {r[kind]: sorted(m) for r in rules if (m := unknown_metrics(r["expr"], known, records))}
    assert not problems, problems


def test_the_issue_s_metrics_are_registered():
    names = exported_by_service()
    for family in (
        "shop_assistant_http_requests_total",
        "shop_assistant_http_request_duration_seconds_bucket",
        "shop_assistant_node_latency_seconds_bucket",
        "shop_assistant_time_to_first_token_seconds_bucket",
        "shop_assistant_generated_tokens_total",
        "shop_assistant_guard_verdicts_total",
        "shop_assistant_rate_limit_rejections_total",
        "shop_assistant_retrieval_top_score_bucket",
        "shop_assistant_backend_requests_total",
        "shop_assistant_backend_errors_total",
        "shop_assistant_backend_traffic_share",
        "shop_assistant_backend_rollbacks_total",
        "shop_assistant_requests_in_flight",
        "shop_assistant_emergency_stop",
    ):
        assert family in names, family
