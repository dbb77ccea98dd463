"""Tests that need a build output (a model export, a trained model): skip without it, except under CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def require_built(marker: Path, how: str) -> None:
    """Skip when a build output (``marker``) is absent, naming ``how`` to build it; under CI=true, fail instead."""
    if marker.is_file():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{marker} is missing; CI builds it with {how}")
    pytest.skip(f"{marker} not found: build it with {how}")
