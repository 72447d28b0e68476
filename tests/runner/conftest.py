"""Fixtures for the runner tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A directory for fake executables."""
    path = tmp_path / "bin"
    path.mkdir()
    return path
