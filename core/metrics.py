"""Prometheus metrics of the service: one module, low-cardinality labels only (no text, no IP).

Add new metrics here (not in the modules that update them) so that ``/metrics``, the dashboards
and the alert rules have one list to check against.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

NAMESPACE = "shop_assistant"
logger = logging.getLogger(__name__)

REQUESTS_IN_FLIGHT = Gauge(f"{NAMESPACE}_requests_in_flight", "Requests being answered by this process.")
REQUESTS_REJECTED_OVERLOAD = Counter(
    f"{NAMESPACE}_overload_rejections_total", "Requests refused with 503 because the in-flight cap was reached."
)
DEGRADED_ANSWERS = Counter(
    f"{NAMESPACE}_degraded_answers_total", "Answers produced with a pipeline step skipped under load.", ["skipped"]
)
LLM_FALLBACKS = Counter(
    f"{NAMESPACE}_generation_fallbacks_total",
    "Answers whose generation failed (every LLM backend down, or its time budget spent) and that were answered "
    "from the evidence instead.",
)
FEEDBACK = Counter(f"{NAMESPACE}_feedback_total", "Shopper feedback on answers.", ["rating"])
QUESTION_REWRITES = Counter(
    f"{NAMESPACE}_question_rewrites_total",
    "Follow-up questions rewritten with the conversation history, by outcome (ok or the fallback's reason).",
    ["outcome"],
)
HISTORY_PURGED = Counter(f"{NAMESPACE}_history_purged_total", "Conversations deleted after the retention period.")
NODE_LATENCY = Histogram(
    f"{NAMESPACE}_node_latency_seconds",
    "Time spent in each graph node.",
    ["node"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BATCH_SIZE = Histogram(
    f"{NAMESPACE}_model_batch_size",
    "Inputs per call of a CPU model (query embedder, reranker) after micro-batching across requests.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)

# Request-level metrics, updated by api.observability from the gate's audit record (route templates, not paths).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
HTTP_REQUESTS = Counter(
    f"{NAMESPACE}_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    f"{NAMESPACE}_http_request_duration_seconds",
    "Time until the response was sent completely (streams included), by route template and status.",
    ["route", "status"],
    buckets=LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    f"{NAMESPACE}_time_to_first_token_seconds",
    "Streamed answers: time until the first answer text.",
    buckets=LATENCY_BUCKETS,
)
TOKENS_GENERATED = Counter(f"{NAMESPACE}_generated_tokens_total", "Completion tokens reported by the LLM.", ["backend"])
GUARD_VERDICTS = Counter(
    f"{NAMESPACE}_guard_verdicts_total",
    "Guard decisions: stage (input, output), decision, and the first reason ('none' when passed).",
    ["stage", "decision", "reason"],
)
ANSWER_OUTCOMES = Counter(
    f"{NAMESPACE}_outcomes_total",
    "Answers by outcome (core.outcomes: generated, extractive, abstained, refused, service, off_topic, routes).",
    ["outcome"],
)
SCOPE_ROUTES = Counter(
    f"{NAMESPACE}_scope_routes_total",
    "Questions answered with a fixed customer-service route before retrieval (chains.scope), by route.",
    ["route"],
)
RATE_LIMIT_REJECTIONS = Counter(
    f"{NAMESPACE}_rate_limit_rejections_total", "Requests refused with 429, by verdict (limited, blocked).", ["verdict"]
)
RETRIEVAL_TOP_SCORE = Histogram(
    f"{NAMESPACE}_retrieval_top_score",
    "Similarity of the best kept chunk per answered question (0 when nothing relevant was found).",
    buckets=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
BACKEND_REQUESTS = Counter(f"{NAMESPACE}_backend_requests_total", "Requests sent to an LLM backend.", ["backend"])
BACKEND_ERRORS = Counter(
    f"{NAMESPACE}_backend_errors_total", "LLM backend calls that failed or timed out.", ["backend"]
)
BACKEND_TRAFFIC_SHARE = Gauge(
    f"{NAMESPACE}_backend_traffic_share", "Configured share (0..1) of new conversations per LLM backend.", ["backend"]
)
BACKEND_ROLLBACKS = Counter(
    f"{NAMESPACE}_backend_rollbacks_total",
    "Automatic rollbacks of an LLM canary backend (set by the backend registry, issue #6).",
    ["backend", "reason"],
)
# Per-backend calls as the router (core.routing, issue #6) sees them: every LLM call, failover attempts included.
BACKEND_CALLS = Counter(
    f"{NAMESPACE}_backend_calls_total",
    "LLM calls per backend by outcome: ok, error (after the first token or no other backend), failover.",
    ["backend", "outcome"],
)
BACKEND_LATENCY = Histogram(
    f"{NAMESPACE}_backend_call_duration_seconds",
    "Duration of LLM calls per backend.",
    ["backend"],
    buckets=LATENCY_BUCKETS,
)
BACKEND_TTFT = Histogram(
    f"{NAMESPACE}_backend_time_to_first_token_seconds",
    "Time to the first token per LLM backend.",
    ["backend"],
    buckets=LATENCY_BUCKETS,
)
BACKEND_UP = Gauge(
    f"{NAMESPACE}_backend_up",
    "1 while an LLM backend is in rotation (health check ok, breaker not open).",
    ["backend"],
)
BACKEND_ROLLBACK_ACTIVE = Gauge(
    f"{NAMESPACE}_backend_rollback_active",
    "1 after an automatic rollback took a canary backend out of rotation, until an admin sets its weight again.",
    ["backend"],
)
EMERGENCY_STOP = Gauge(f"{NAMESPACE}_emergency_stop", "1 while the emergency stop is active, else 0.")


# The ingest is a CLI without a scrape target: it records each publish attempt in the index store
# (core.index_versions.record_publish), and the service, which reads that store, exports it at scrape time.
INGEST_REFUSAL_REASONS = ("failed_files", "deletions", "empty")  # = core.index_versions.REFUSAL_REASONS


class IngestPublishCollector(Collector):
    """The index's last publish attempt as metrics, read from the index store when ``/metrics`` is scraped."""

    def __init__(self) -> None:
        self._read: Callable[[], Mapping[str, Any] | None] | None = None

    def watch(self, read: Callable[[], Mapping[str, Any] | None]) -> None:
        """Export what ``read`` returns (the service's index store registers itself: core.vectorstore)."""
        self._read = read

    def _families(self) -> tuple[CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily(
                f"{NAMESPACE}_ingest_publish_refused",
                "Ingest runs whose publish was refused (the old index version stayed active), recorded in the index.",
            ),
            GaugeMetricFamily(
                f"{NAMESPACE}_ingest_last_publish_refused",
                "1 for each reason that refused the latest ingest's publish; all 0 after a successful ingest.",
                labels=["reason"],
            ),
            GaugeMetricFamily(
                f"{NAMESPACE}_ingest_last_success_timestamp_seconds",
                "Unix time of the last ingest that left the index in line with the catalogue (published or unchanged).",
            ),
        )

    def describe(self) -> Iterator[Metric]:
        """The metric names, without reading the store."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """Read the status record; the families without samples before one exists or while it cannot be read."""
        refused, last, success = self._families()
        try:
            status = self._read() if self._read is not None else None
        except Exception as exc:  # a scrape must not fail because the index store is down (/ready says so)
            logger.warning("could not read the ingest publish status: %s", exc)
            status = None
        if not status:
            yield from (refused, last, success)
            return
        refused.add_metric([], float(status.get("refused_total", 0)))
        reasons = str(status.get("last_reasons", "")).split(",") if status.get("last_outcome") == "refused" else []
        for reason in INGEST_REFUSAL_REASONS:
            last.add_metric([reason], 1.0 if reason in reasons else 0.0)
        success.add_metric([], float(status.get("last_success", 0.0)))
        yield from (refused, last, success)


INGEST_PUBLISH = IngestPublishCollector()
REGISTRY.register(INGEST_PUBLISH)
