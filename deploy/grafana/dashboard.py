"""Build the shop assistant's Grafana dashboard with grafana-foundation-sdk (``make dashboard``).

Writes ``deploy/grafana/dashboards/shop-assistant.json``, which Grafana provisions from
``deploy/grafana/provisioning/``. tests/unit/deploy/test_dashboard.py checks that the committed JSON
equals this builder's output, that it round-trips through the SDK's typed schema models, and that every
query uses a metric that the API (core/metrics.py) or vLLM (deploy/vllm/metrics.txt) exports.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import Dashboard, DataSourceRef

DS = DataSourceRef(type_val="prometheus", uid="prometheus")  # provisioning/datasources.yml sets this uid
API = 'job="shop-assistant"'
VLLM = 'job="vllm"'

# (title, unit, [(PromQL, legend)]); rows of two panels each.
ROWS: list[tuple[str, list[tuple[str, str, list[tuple[str, str]]]]]] = [
    (
        "Traffic and errors",
        [
            (
                "Requests/s by route",
                "reqps",
                [(f"sum by (route) (rate(shop_assistant_http_requests_total{{{API}}}[5m]))", "{{route}}")],
            ),
            (
                "Error ratio (5xx) and 429s",
                "percentunit",
                [
                    ("job:shop_assistant_http_errors:ratio_rate5m", "5xx ratio"),
                    (
                        f'sum(rate(shop_assistant_http_requests_total{{{API},status="429"}}[5m]))'
                        f" / sum(rate(shop_assistant_http_requests_total{{{API}}}[5m]))",
                        "429 ratio",
                    ),
                ],
            ),
        ],
    ),
    (
        "Latency",
        [
            (
                "Request latency percentiles",
                "s",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) (rate(shop_assistant_http_request_duration_seconds_bucket"
                        f'{{{API},route!~"/health|/ready|/metrics"}}[5m])))',
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.95, 0.99)
                ],
            ),
            (
                "Time to first token (API and vLLM)",
                "s",
                [
                    ("job:shop_assistant_time_to_first_token_seconds:p95_5m", "API p95"),
                    (
                        "histogram_quantile(0.95, sum by (le) "
                        f"(rate(vllm:time_to_first_token_seconds_bucket{{{VLLM}}}[5m])))",
                        "vLLM p95",
                    ),
                ],
            ),
            (
                "Per-node latency p95",
                "s",
                [
                    (
                        "histogram_quantile(0.95, sum by (node, le) "
                        f"(rate(shop_assistant_node_latency_seconds_bucket{{{API}}}[5m])))",
                        "{{node}}",
                    )
                ],
            ),
            (
                "Retrieval top score (median)",
                "none",
                [
                    (
                        "histogram_quantile(0.5, sum by (le) "
                        f"(rate(shop_assistant_retrieval_top_score_bucket{{{API}}}[15m])))",
                        "median top score",
                    )
                ],
            ),
        ],
    ),
    (
        "Safety and quality",
        [
            (
                "Guard verdicts and scope routes/s",
                "reqps",
                [
                    (
                        f"sum by (stage, decision, reason) (rate(shop_assistant_guard_verdicts_total{{{API}}}[5m]))",
                        "{{stage}} {{decision}} {{reason}}",
                    ),
                    ("job:shop_assistant_guard_blocks:ratio_rate5m", "input block ratio"),
                    (
                        f"sum by (route) (rate(shop_assistant_scope_routes_total{{{API}}}[5m]))",
                        "scope route {{route}}",
                    ),
                ],
            ),
            (
                "Degraded answers, overload and rate-limit rejections",
                "reqps",
                [
                    (
                        f"sum by (skipped) (rate(shop_assistant_degraded_answers_total{{{API}}}[5m]))",
                        "skipped {{skipped}}",
                    ),
                    (f"sum(rate(shop_assistant_overload_rejections_total{{{API}}}[5m]))", "503 overload"),
                    ("job:shop_assistant_rate_limit_rejections:rate5m", "429 rate limit"),
                ],
            ),
            (
                "Shopper feedback (per hour)",
                "short",
                [(f"sum by (rating) (increase(shop_assistant_feedback_total{{{API}}}[1h]))", "{{rating}}")],
            ),
            (
                "In flight and emergency stop",
                "short",
                [
                    (f"sum(shop_assistant_requests_in_flight{{{API}}})", "in flight"),
                    (f"max(shop_assistant_emergency_stop{{{API}}})", "emergency stop"),
                ],
            ),
        ],
    ),
    (
        "LLM backends",
        [
            (
                "Backend traffic share (served) and configured",
                "percentunit",
                [
                    ("backend:shop_assistant_backend_requests:share_rate5m", "served {{backend}}"),
                    (f"max by (backend) (shop_assistant_backend_traffic_share{{{API}}})", "configured {{backend}}"),
                ],
            ),
            (
                "Backend errors and rollbacks",
                "short",
                [
                    ("backend:shop_assistant_backend_errors:ratio_rate5m", "error ratio {{backend}}"),
                    (f"sum by (backend) (increase(shop_assistant_backend_rollbacks_total{{{API}}}[1h]))", "rollbacks"),
                ],
            ),
            (
                "Generated tokens/s (API and vLLM)",
                "short",
                [
                    (f"sum by (backend) (rate(shop_assistant_generated_tokens_total{{{API}}}[5m]))", "API {{backend}}"),
                    (f"sum(rate(vllm:generation_tokens_total{{{VLLM}}}[5m]))", "vLLM generation"),
                    (f"sum(rate(vllm:prompt_tokens_total{{{VLLM}}}[5m]))", "vLLM prompt"),
                ],
            ),
            (
                "vLLM running/waiting requests and KV-cache usage",
                "short",
                [
                    (f"sum(vllm:num_requests_running{{{VLLM}}})", "running"),
                    (f"sum(vllm:num_requests_waiting{{{VLLM}}})", "waiting"),
                    (f"max(vllm:kv_cache_usage_perc{{{VLLM}}})", "KV cache used (0..1)"),
                ],
            ),
        ],
    ),
]

STATS: list[tuple[str, str, str]] = [
    ("Requests/s", "job:shop_assistant_http_requests:rate5m", "reqps"),
    ("P95 latency", "job:shop_assistant_http_latency_seconds:p95_5m", "s"),
    ("5xx ratio", "job:shop_assistant_http_errors:ratio_rate5m", "percentunit"),
    ("vLLM up", f"min(up{{{VLLM}}})", "none"),
]


def _query(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)


def build() -> dict[str, Any]:
    """The dashboard as Grafana JSON (a plain dict)."""
    board = (
        dashboard.Dashboard("Shop assistant")
        .uid("shop-assistant")
        .tags(["shop-assistant", "vllm"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
    )
    ids = iter(range(1, 100))
    board = board.with_row(dashboard.Row("Overview").id(next(ids)))
    for title, expr, unit in STATS:
        board = board.with_panel(
            stat.Panel()
            .id(next(ids))
            .title(title)
            .datasource(DS)
            .unit(unit)
            .span(6)
            .height(4)
            .graph_mode(common.BigValueGraphMode.AREA)
            .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
            .with_target(_query(expr, title, "A"))
        )
    for row, panels in ROWS:
        board = board.with_row(dashboard.Row(row).id(next(ids)))
        for title, unit, queries in panels:
            panel = (
                timeseries.Panel()
                .id(next(ids))
                .title(title)
                .datasource(DS)
                .unit(unit)
                .span(12)
                .height(8)
                .legend(common_b.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST))
            )
            for i, (expr, legend) in enumerate(queries):
                panel = panel.with_target(_query(expr, legend, chr(ord("A") + i)))
            board = board.with_panel(panel)
    # Normalise through the SDK's schema models (they add the defaults Grafana would), so that the JSON is a
    # fixed point of Dashboard.from_json: the test's schema check.
    register_default_plugins()
    normalised = Dashboard.from_json(json.loads(json.dumps(board.build(), cls=JSONEncoder)))
    data: dict[str, Any] = json.loads(json.dumps(normalised, cls=JSONEncoder))
    return data


def main() -> None:
    """Write the dashboard JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "dashboards" / "shop-assistant.json")
    out = parser.parse_args().out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(build(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
