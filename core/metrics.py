"""Prometheus metrics of the service: one module, low-cardinality labels only (no text, no IP).

Add new metrics here (not in the modules that update them) so that ``/metrics``, the dashboards
and the alert rules have one list to check against.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NAMESPACE = "shop_assistant"

REQUESTS_IN_FLIGHT = Gauge(f"{NAMESPACE}_requests_in_flight", "Requests being answered by this process.")
REQUESTS_REJECTED_OVERLOAD = Counter(
    f"{NAMESPACE}_overload_rejections_total", "Requests refused with 503 because the in-flight cap was reached."
)
DEGRADED_ANSWERS = Counter(
    f"{NAMESPACE}_degraded_answers_total", "Answers produced with a pipeline step skipped under load.", ["skipped"]
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
