"""Shared fixtures: keep tests offline and isolated from the developer's settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(autouse=True)
def _clean_resources(tmp_path, monkeypatch):
    """No test leaks resources, cached settings, audit lines or stop flags into the next one."""
    from core.resources import set_resources
    from core.settings import get_settings

    monkeypatch.setenv("AUDIT_LOG_PATH", str(tmp_path / "audit" / "audit.jsonl"))
    monkeypatch.setenv("EMERGENCY_STOP_FILE", str(tmp_path / "EMERGENCY_STOP"))
    monkeypatch.setenv("HISTORY_DB_PATH", str(tmp_path / "conversations.sqlite"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    set_resources(None)
    get_settings.cache_clear()
