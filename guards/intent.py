"""What a message that is not an attack wants: a shop question, a service request, or something off-topic.

A softmax regression over the guard's e5 query vector (no second embedding: the head costs microseconds), trained
by ``python -m modelprep.intent`` on ``guards/data/customer_traffic.jsonl`` and the shop questions of
``guards/data``. Classes: ``question`` and the route reasons of ``core.outcomes`` (account, payment, complaint,
privacy, order, off_topic). A message is routed only when its route group (service or off-topic) reaches its
threshold, chosen on the dev split so that shop questions are almost never routed; everything else is answered.

This is not a security layer: when the model is missing, every message is treated as a question (the attack
guard in ``graph.gates.guard`` still fails closed).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.outcomes import SERVICE_REASONS

logger = logging.getLogger(__name__)

Intent = Literal["question", "service", "off_topic"]
CLASSES: tuple[str, ...] = ("question", "account", "payment", "complaint", "privacy", "order", "off_topic")
DEFAULT_SERVICE_THRESHOLD = 0.6
DEFAULT_OFF_TOPIC_THRESHOLD = 0.6
MIXED_QUESTION_MIN = 0.5  # a clause this likely to be a shop question makes a routed message "mixed"
MIXED_SERVICE_MIN = 0.25  # a question this likely to hold a request has its clauses looked at one by one
FORMAT_VERSION = 1


class IntentModelError(RuntimeError):
    """The intent model is missing, unreadable, or was trained for another embedding model."""


@dataclass(frozen=True, kw_only=True)
class IntentVerdict:
    """The decision on one message: its group, the route reason (None for questions) and the probabilities."""

    intent: Intent
    reason: str | None
    score: float  # the probability of the decided group
    probabilities: dict[str, float]

    @property
    def service(self) -> float:
        """The probability that the message is a service request (any reason)."""
        return _service(self.probabilities)


def _service(probabilities: dict[str, float]) -> float:
    return sum(probabilities[r] for r in SERVICE_REASONS)


class IntentClassifier:
    """Softmax regression over standardised e5 query vectors; ``classify`` decides the message's group."""

    def __init__(
        self,
        weights: np.ndarray,
        bias: np.ndarray,
        mean: np.ndarray,
        scale: np.ndarray,
        *,
        service_threshold: float = DEFAULT_SERVICE_THRESHOLD,
        off_topic_threshold: float = DEFAULT_OFF_TOPIC_THRESHOLD,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.weights = np.asarray(weights, dtype=np.float32)  # (dim, classes)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.service_threshold = float(service_threshold)
        self.off_topic_threshold = float(off_topic_threshold)
        self.meta: dict[str, Any] = dict(meta or {})
        if self.weights.shape[1] != len(CLASSES):
            raise IntentModelError(f"the intent model has {self.weights.shape[1]} classes, expected {len(CLASSES)}")

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities (rows follow ``CLASSES``) for L2-normalised e5 query vectors."""
        z = (np.atleast_2d(np.asarray(vectors, dtype=np.float32)) - self.mean) / self.scale
        logits = z @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float64)

    def decide(self, probs: np.ndarray) -> IntentVerdict:
        """The group of one probability row: service, off-topic, or (below both thresholds) a question."""
        p = {name: float(x) for name, x in zip(CLASSES, probs, strict=True)}
        service = _service(p)
        if service >= self.service_threshold and service >= p["off_topic"]:
            reason = max(SERVICE_REASONS, key=lambda r: p[r])
            return IntentVerdict(intent="service", reason=reason, score=service, probabilities=p)
        if p["off_topic"] >= self.off_topic_threshold:
            return IntentVerdict(intent="off_topic", reason="off_topic", score=p["off_topic"], probabilities=p)
        return IntentVerdict(intent="question", reason=None, score=p["question"], probabilities=p)

    def classify(self, vector: np.ndarray) -> IntentVerdict:
        """Decide on one message from its query vector."""
        return self.decide(self.probabilities(vector)[0])

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (classes, thresholds, model id, metrics)."""
        npz = Path(path).with_suffix(".npz")
        npz.parent.mkdir(parents=True, exist_ok=True)
        np.savez(npz, weights=self.weights, bias=self.bias, mean=self.mean, scale=self.scale)
        meta = {
            **self.meta,
            "format_version": FORMAT_VERSION,
            "classes": list(CLASSES),
            "service_threshold": self.service_threshold,
            "off_topic_threshold": self.off_topic_threshold,
        }
        npz.with_suffix(".json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return npz

    @classmethod
    def load(cls, path: str | Path, embedding_model_id: str) -> IntentClassifier:
        """Load a saved model trained on ``embedding_model_id``'s vectors; ``IntentModelError`` otherwise."""
        npz = Path(path).with_suffix(".npz")
        try:
            meta = json.loads(npz.with_suffix(".json").read_text(encoding="utf-8"))
            with np.load(npz) as data:
                arrays = {k: data[k] for k in ("weights", "bias", "mean", "scale")}
        except (OSError, ValueError, KeyError) as exc:
            raise IntentModelError(f"cannot read the intent model {npz}: {exc}; run `make models`") from exc
        if meta.get("classes") != list(CLASSES):
            raise IntentModelError(f"the intent model {npz} has other classes: {meta.get('classes')}")
        if meta.get("embedding_model_id") != embedding_model_id:
            raise IntentModelError(
                f"the intent model {npz} was trained for {meta.get('embedding_model_id')!r}, "
                f"the service embeds with {embedding_model_id!r}; run `make models`"
            )
        return cls(
            arrays["weights"],
            arrays["bias"],
            arrays["mean"],
            arrays["scale"],
            service_threshold=float(meta["service_threshold"]),
            off_topic_threshold=float(meta["off_topic_threshold"]),
            meta=meta,
        )
