"""``POST /api/pull`` and ``/api/push`` through the app, against the real registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from tests.fakes import FakeFactory
from tests.registry.servers import Registry

pytestmark = pytest.mark.registry


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / "home")
    with TestClient(create_app(settings, engine_factory=FakeFactory())) as client:
        yield client


def test_live_pull_streams_ollamas_statuses(api: TestClient, published: str) -> None:
    with api.stream("POST", "/api/pull", json={"model": published}) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-3:] == [
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    layer = next(x for x in lines if "digest" in x)
    assert layer["status"] == f"pulling {layer['digest'][7:19]}"
    assert {"total", "completed"} <= layer.keys()
    tags = api.get("/api/tags").json()["models"]
    assert published in [m["name"] for m in tags]


def test_live_pull_stream_false_and_errors(
    api: TestClient, published: str, registry: Registry
) -> None:
    response = api.post("/api/pull", json={"model": published, "stream": False})
    assert response.status_code == 200
    assert response.json() == {"status": "success"}

    missing = f"{registry.host}/library/nope:1"
    with api.stream("POST", "/api/pull", json={"model": missing}) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    response = api.post("/api/pull", json={"model": missing, "stream": False})
    assert response.status_code == 404
    assert response.json() == {"error": "pull model manifest: file does not exist"}


def test_live_push_through_api(api: TestClient, registry: Registry) -> None:
    target = f"{registry.host}/api/smol:pushed"
    assert api.post("/api/copy", json={"source": "smollm2:135m", "destination": target}).is_success
    response = api.post("/api/push", json={"model": target, "stream": False, "insecure": True})
    assert response.json() == {"status": "success"}
    assert api.request("DELETE", "/api/delete", json={"model": target}).is_success
    response = api.post("/api/pull", json={"model": target, "stream": False})
    assert response.json() == {"status": "success"}
