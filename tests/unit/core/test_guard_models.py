"""A guard head trained for another embedding model stops the API at start-up, naming `make models` (issue #17)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import core.resources
from core.guard_models import GuardModelMismatchError, check_guard_models
from core.settings import Settings

SMALL = "local:multilingual-e5-small@3e344b9d79"
BASE = "intfloat/multilingual-e5-base"


def _head(path: Path, trained_for: str) -> Path:
    path.with_suffix(".json").write_text(json.dumps({"embedding_model_id": trained_for}), encoding="utf-8")
    return path


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "embedding_model": BASE,
        "intent_model_path": tmp_path / "intent.npz",
        "injection_classifier_path": tmp_path / "injection.npz",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def test_intent_model_for_another_embedding_model_is_a_start_up_error(tmp_path):
    _head(tmp_path / "intent.npz", SMALL)
    with pytest.raises(GuardModelMismatchError) as err:
        check_guard_models(_settings(tmp_path), BASE)
    message = str(err.value)
    assert "`make models`" in message
    assert str(tmp_path / "intent.npz") in message and "INTENT_MODEL_PATH" in message
    assert repr(SMALL) in message and repr("multilingual-e5-base") in message and f"EMBEDDING_MODEL={BASE}" in message


def test_logistic_injection_classifier_for_another_embedding_model_is_a_start_up_error(tmp_path):
    _head(tmp_path / "injection.npz", SMALL)
    settings = _settings(tmp_path, injection_classifier="logistic")
    with pytest.raises(
        GuardModelMismatchError, match=r"injection classifier .*INJECTION_CLASSIFIER_PATH.*`make models`"
    ):
        check_guard_models(settings, BASE)


def test_matching_missing_or_unused_heads_pass(tmp_path):
    check_guard_models(_settings(tmp_path), BASE)  # nothing on disk: the existing fail-closed / warning paths apply
    _head(tmp_path / "intent.npz", SMALL)
    _head(tmp_path / "injection.npz", SMALL)
    check_guard_models(_settings(tmp_path, embedding_model="/models/multilingual-e5-small"), SMALL)
    (tmp_path / "intent.json").unlink()
    # The fine-tuned encoder (the default) reads no e5 vector: a logistic head on disk for another model is unused.
    check_guard_models(_settings(tmp_path, injection_classifier="encoder"), BASE)


def test_build_resources_stops_before_loading_anything_else(tmp_path, monkeypatch):
    _head(tmp_path / "intent.npz", SMALL)
    monkeypatch.setattr(core.resources, "make_embedder", lambda *a, **k: SimpleNamespace(name=BASE))

    def no_store(*args, **kwargs):
        raise AssertionError("the index was opened before the guard models were checked")

    monkeypatch.setattr(core.resources, "open_client", no_store)
    with pytest.raises(GuardModelMismatchError, match="make models"):
        core.resources.build_resources(_settings(tmp_path))
