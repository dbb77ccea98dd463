"""Start-up check: the guard's heads over the e5 query vector were trained for the embedding model in use.

The logistic injection classifier (``INJECTION_CLASSIFIER=logistic``, ``guards.classifier``) and the intent model
(``guards.intent``) are heads over the vector of ``EMBEDDING_MODEL``; ``make models`` trains both for the model it
prepares. A head trained for another model (e5-small files in a deployment that embeds with e5-base, say) would
refuse every question (the injection classifier fails closed) or silently route nothing (the intent model), so the
service refuses to start instead and names the step that builds them. A missing file is not checked here: the
injection classifier then fails closed and ``/ready`` says so; a missing intent model is a warning.
The fine-tuned guard encoder (``INJECTION_CLASSIFIER=encoder``) carries its own encoder and reads no e5 vector.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.settings import Settings
from guards.classifier import embedding_model_id

BUILD_STEP = "make models"


class GuardModelMismatchError(RuntimeError):
    """A guard model on disk was trained for another embedding model than ``EMBEDDING_MODEL``."""


def trained_for(path: Path) -> str | None:
    """The ``embedding_model_id`` in the metadata next to ``path`` (``<name>.json``); None if it cannot be read."""
    try:
        meta = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = meta.get("embedding_model_id") if isinstance(meta, dict) else None
    return str(value) if value else None


def check_guard_models(settings: Settings, embedder_name: str) -> None:
    """Raise ``GuardModelMismatchError`` when a guard head was trained for another embedding model."""
    wanted = embedding_model_id(embedder_name)
    heads: list[tuple[str, str, Path]] = [("intent model", "INTENT_MODEL_PATH", settings.intent_model_path)]
    if settings.injection_classifier == "logistic":
        heads.insert(0, ("injection classifier", "INJECTION_CLASSIFIER_PATH", settings.injection_classifier_path))
    wrong = []
    for what, key, path in heads:
        found = trained_for(path)
        if found is not None and found != wanted:
            wrong.append(f"the {what} {Path(path).with_suffix('.npz')} ({key}) was trained for {found!r}")
    if wrong:
        raise GuardModelMismatchError(
            f"{'; '.join(wrong)}, but the service embeds with {wanted!r} (EMBEDDING_MODEL={settings.embedding_model}). "
            f"Build the guard models for the configured embedding model with `{BUILD_STEP}` (on the build host, into "
            "the models volume: docs/operations.md), or set EMBEDDING_MODEL to the model they were trained for."
        )
