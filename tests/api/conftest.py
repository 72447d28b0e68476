from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.store.defaults import ensure_default_model
from corral.store.models import Store
from tests.fakes import FakeFactory


@pytest.fixture(scope="session")
def seeded_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api-store") / "models"
    assert ensure_default_model(Store(root))
    return root


@pytest.fixture
def factory() -> FakeFactory:
    return FakeFactory()


@pytest.fixture
def client(seeded_models: Path, factory: FakeFactory, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / "home", models=seeded_models)
    with TestClient(create_app(settings, engine_factory=factory)) as test_client:
        yield test_client
