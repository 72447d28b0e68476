"""A corral app on the scripted engine, served over real HTTP: bench runs in a second."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from corral.api.app import create_app
from corral.config import Settings
from corral.store.defaults import ensure_default_model
from corral.store.models import Store
from tests.fakes import FakeFactory
from tests.live import serve_in_thread


@contextmanager
def fake_corral(tmp_path: Path, factory: FakeFactory | None = None) -> Iterator[str]:
    """The URL of a corral server whose engines are :class:`FakeEngine` (3 tokens each)."""
    models = tmp_path / "models"
    assert ensure_default_model(Store(models))
    settings = Settings(home=tmp_path / "home", models=models)
    app = create_app(settings, engine_factory=factory or FakeFactory())
    with serve_in_thread(app) as url:
        yield url
