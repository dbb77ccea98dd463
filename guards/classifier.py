"""Layer (b) of the prompt-injection defence: logistic regression over e5 query embeddings.

The classifier is deliberately small: the e5 query vector of the sanitised question (the same
vector the retriever computes) is standardised and fed to a numpy logistic regression. A saved
model is two files side by side: ``<name>.npz`` (weights) and ``<name>.json`` (metadata:
embedding model, threshold, training date, metrics). Train it with ``python -m guards.train_classifier``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.embeddings import Embedder
from guards.input import sanitize

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
"""Fallback decision threshold; a trained model carries its own (chosen in cross-validation)."""
FORMAT_VERSION = 1


class ClassifierUnavailableError(RuntimeError):
    """The saved classifier is missing, unreadable, or was trained for another embedding model."""


def embedding_model_id(name: str) -> str:
    """Normalise an embedder name (local path or hub id) to the model's folder/repo name.

    ``/srv/models/multilingual-e5-small`` and ``intfloat/multilingual-e5-small`` both become
    ``multilingual-e5-small``, so a model copied to another machine still matches.
    """
    return Path(name.rstrip("/\\")).name


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, max_iter: int = 50) -> tuple[np.ndarray, float]:
    """Fit an L2-regularised logistic regression with balanced class weights by Newton's method.

    ``x`` is ``(n, d)`` (already standardised), ``y`` holds 0/1 labels. The bias is not penalised.
    Returns ``(weights, bias)``.
    """
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    n_pos = float(y.sum())
    if n_pos == 0 or n_pos == n:
        raise ValueError("training data needs both classes")
    sample_w = np.where(y == 1, n / (2 * n_pos), n / (2 * (n - n_pos)))
    xb = np.hstack([np.asarray(x, dtype=np.float64), np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    theta = np.zeros(d + 1)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ theta, -30, 30)))
        grad = xb.T @ (sample_w * (p - y)) + penalty * theta
        hess = (xb * (sample_w * p * (1 - p))[:, None]).T @ xb + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if float(np.max(np.abs(step))) < 1e-7:
            break
    return theta[:-1].astype(np.float32), float(theta[-1])


class InjectionClassifier:
    """Scores questions for prompt-injection / jailbreak / prompt-leak intent (1 = attack)."""

    uses_vector = True  # a head over the retriever's e5 vector: microseconds once the vector is there

    def __init__(
        self,
        embedder: Embedder,
        weights: np.ndarray,
        bias: float,
        mean: np.ndarray,
        scale: np.ndarray,
        threshold: float = DEFAULT_THRESHOLD,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.embedder = embedder
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bias = float(bias)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.threshold = float(threshold)
        self.meta: dict[str, Any] = dict(meta or {})

    @classmethod
    def fit(
        cls,
        embedder: Embedder,
        vectors: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        *,
        l2: float = 1.0,
        threshold: float = DEFAULT_THRESHOLD,
        meta: dict[str, Any] | None = None,
    ) -> InjectionClassifier:
        """Train on precomputed query ``vectors`` (from ``embedder``) and 0/1 ``labels``."""
        vectors = np.asarray(vectors, dtype=np.float32)
        mean = vectors.mean(axis=0)
        scale = vectors.std(axis=0) + 1e-6
        weights, bias = fit_logistic((vectors - mean) / scale, np.asarray(labels), l2=l2)
        return cls(embedder, weights, bias, mean, scale, threshold=threshold, meta={"l2": l2, **(meta or {})})

    def predict_proba_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Attack probability for precomputed, L2-normalised e5 query vectors (one row each)."""
        z = (np.atleast_2d(np.asarray(vectors, dtype=np.float32)) - self.mean) / self.scale
        logits = np.clip(z @ self.weights + self.bias, -30.0, 30.0)
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float64)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Attack probability for each text (sanitised like ``guards.input`` does, then embedded)."""
        if not texts:
            return np.zeros(0, dtype=np.float64)
        return self.predict_proba_vectors(self.embedder.embed_queries([sanitize(t) for t in texts]))

    def is_injection(self, text: str, vector: np.ndarray | None = None) -> tuple[bool, float]:
        """Return ``(flagged, probability)``; flagged when the probability reaches the threshold.

        Pass ``vector`` (the e5 query vector of the sanitised ``text``, e.g. the one the retriever
        already computed) to skip embedding: the head alone costs microseconds.
        """
        scores = self.predict_proba([text]) if vector is None else self.predict_proba_vectors(vector)
        proba = float(scores[0])
        return proba >= self.threshold, proba

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` and ``<path>.json`` atomically; return the ``.npz`` path."""
        npz_path = Path(path).with_suffix(".npz")
        npz_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "embedding_model": self.embedder.name,
            "embedding_model_id": embedding_model_id(self.embedder.name),
            "embedding_dim": int(self.weights.shape[0]),
            "threshold": self.threshold,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **{k: v for k, v in self.meta.items() if k not in {"threshold", "embedding_dim"}},
        }
        tmp = npz_path.with_name(npz_path.name + ".tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, weights=self.weights, bias=np.float32(self.bias), mean=self.mean, scale=self.scale)
        os.replace(tmp, npz_path)
        json_path = npz_path.with_suffix(".json")
        tmp_json = json_path.with_name(json_path.name + ".tmp")
        tmp_json.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp_json, json_path)
        self.meta = meta
        logger.info("saved injection classifier to %s (threshold %.4f)", npz_path, self.threshold)
        return npz_path

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder) -> InjectionClassifier:
        """Load a saved model for ``embedder``.

        Raises ``ClassifierUnavailableError`` when a file is missing or unreadable, or when the
        model was trained on another embedding model (name or vector size differs).
        """
        npz_path = Path(path).with_suffix(".npz")
        json_path = npz_path.with_suffix(".json")
        for p in (npz_path, json_path):
            if not p.is_file():
                raise ClassifierUnavailableError(
                    f"injection classifier file {p} is missing; train it with "
                    f"`python -m guards.train_classifier --out {npz_path}`"
                )
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
            with np.load(npz_path) as data:
                arrays = {k: data[k] for k in ("weights", "bias", "mean", "scale")}
        except (OSError, ValueError, KeyError) as exc:
            raise ClassifierUnavailableError(f"cannot read injection classifier {npz_path}: {exc}") from exc
        trained_for = str(meta.get("embedding_model_id", ""))
        wanted = embedding_model_id(embedder.name)
        if trained_for != wanted:
            raise ClassifierUnavailableError(
                f"injection classifier {npz_path} was trained for embedding model {trained_for!r}, "
                f"but the service uses {wanted!r}; retrain it"
            )
        if arrays["weights"].shape[0] != int(meta.get("embedding_dim", -1)):
            raise ClassifierUnavailableError(f"injection classifier {npz_path} is inconsistent (vector size)")
        logger.info(
            "loaded injection classifier %s (model %s, threshold %.4f)", npz_path, trained_for, float(meta["threshold"])
        )
        return cls(
            embedder,
            arrays["weights"],
            float(arrays["bias"]),
            arrays["mean"],
            arrays["scale"],
            threshold=float(meta["threshold"]),
            meta=meta,
        )
