"""/api/create, /api/copy, /api/delete and /api/blobs through the app, with the fake engine."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.store.defaults import ensure_default_model
from corral.store.models import Store
from tests.fakes import FakeFactory

BASE = "smollm2:135m"


@pytest.fixture
def factory() -> FakeFactory:
    return FakeFactory()


@pytest.fixture
def client(tmp_path: Path, factory: FakeFactory) -> Iterator[TestClient]:
    # A store of its own: these tests add and remove models.
    models = tmp_path / "models"
    assert ensure_default_model(Store(models))
    app = create_app(Settings(home=tmp_path / "home", models=models), engine_factory=factory)
    with TestClient(app) as test_client:
        yield test_client


def lines(response: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_create_streams_ndjson_by_default(client: TestClient) -> None:
    response = client.post("/api/create", json={"model": "pirate", "from": BASE, "system": "Arr."})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    statuses = [line["status"] for line in lines(response)]
    assert statuses[0].startswith("using existing layer sha256:")
    assert statuses[1].startswith("creating new layer sha256:")
    assert statuses[-2:] == ["writing manifest", "success"]
    shown = client.post("/api/show", json={"model": "pirate"}).json()
    assert shown["system"] == "Arr."
    assert "pirate:latest" in [m["name"] for m in client.get("/api/tags").json()["models"]]


def test_create_stream_false_is_one_object(client: TestClient) -> None:
    response = client.post("/api/create", json={"model": "p", "from": BASE, "stream": False})
    assert response.status_code == 200
    assert response.json() == {"status": "success"}


def test_created_model_chats_with_its_system_and_parameters(
    client: TestClient, factory: FakeFactory
) -> None:
    body = {
        "model": "pirate",
        "from": BASE,
        "system": "Arr.",
        "parameters": {"temperature": 0.1, "num_ctx": 512},
    }
    assert client.post("/api/create", json={**body, "stream": False}).status_code == 200
    chat = client.post(
        "/api/chat",
        json={"model": "pirate", "messages": [{"role": "user", "content": "hi"}], "stream": False},
    )
    assert chat.status_code == 200
    [engine] = factory.engines
    assert engine.spec.num_ctx == 512
    call = engine.calls[-1]
    assert call.messages is not None and call.messages[0] == {"role": "system", "content": "Arr."}
    assert call.params.sampling["temperature"] == 0.1


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "x", "from": "nope"}, 404, 'model "nope" not found'),
        ({"model": "x"}, 400, "neither 'from' or 'files' was specified"),
        ({"model": "bad name!", "from": BASE}, 400, "invalid model name"),
        ({"from": BASE}, 400, "model name is required"),
        ({"model": "x", "from": BASE, "template": "{{ .Nope }}"}, 400, "template error: line 1:"),
        ({"model": "x", "from": BASE, "parameters": {"nope": 1}}, 400, "unknown parameter 'nope'"),
        ({"model": "x", "from": BASE, "quantize": "q4_K_M"}, 400, "only supported for F16 and F32"),
        (
            {"model": "x", "from": BASE, "messages": [{"role": "robot", "content": "x"}]},
            400,
            "messages.0.role",
        ),
        (
            {"model": "x", "modelfile": "FROM smollm2:135m\nPARAMETER num_ctx big"},
            400,
            "line 2: invalid int",
        ),
    ],
)
def test_create_errors_keep_their_status(
    client: TestClient, body: dict[str, Any], status: int, message: str, stream: bool
) -> None:
    response = client.post("/api/create", json={**body, "stream": stream})
    assert response.status_code == status
    assert message in response.json()["error"]


def test_legacy_name_and_modelfile(client: TestClient) -> None:
    body = {"name": "legacy", "modelfile": f"FROM {BASE}\nSYSTEM from a modelfile\n"}
    response = client.post("/api/create", json=body)
    assert lines(response)[0] == {"status": "parsing modelfile"}
    assert client.post("/api/show", json={"name": "legacy"}).json()["system"] == "from a modelfile"


def test_copy(client: TestClient) -> None:
    response = client.post("/api/copy", json={"source": BASE, "destination": "team/copy:v1"})
    assert response.status_code == 200 and response.content == b""
    tags = {m["name"]: m["digest"] for m in client.get("/api/tags").json()["models"]}
    assert tags["team/copy:v1"] == tags[BASE]
    missing = client.post("/api/copy", json={"source": "nope", "destination": "x"})
    assert missing.status_code == 404 and 'model "nope" not found' in missing.json()["error"]
    assert (
        client.post("/api/copy", json={"source": BASE, "destination": "bad name!"}).status_code
        == 400
    )
    assert client.post("/api/copy", json={"source": BASE}).status_code == 400


def test_delete(client: TestClient) -> None:
    client.post("/api/copy", json={"source": BASE, "destination": "doomed"})
    response = client.request("DELETE", "/api/delete", json={"model": "doomed"})
    assert response.status_code == 200 and response.content == b""
    assert "doomed:latest" not in [m["name"] for m in client.get("/api/tags").json()["models"]]
    again = client.request("DELETE", "/api/delete", json={"name": "doomed"})  # legacy field
    assert again.status_code == 404 and 'model "doomed" not found' in again.json()["error"]
    assert client.request("DELETE", "/api/delete", json={"model": "bad name!"}).status_code == 400
    # The default model's blob survived the copy's deletion.
    assert client.post("/api/show", json={"model": BASE}).status_code == 200


def test_blobs(client: TestClient) -> None:
    data = b"some blob bytes" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert client.head(f"/api/blobs/{digest}").status_code == 404
    assert client.post(f"/api/blobs/{digest}", content=data).status_code == 201
    assert client.head(f"/api/blobs/{digest}").status_code == 200
    assert client.post(f"/api/blobs/{digest}", content=data).status_code == 200  # already there
    wrong = "sha256:" + "0" * 64
    mismatch = client.post(f"/api/blobs/{wrong}", content=data)
    assert mismatch.status_code == 400 and "digest mismatch" in mismatch.json()["error"]
    assert client.head(f"/api/blobs/{wrong}").status_code == 404
    assert client.head("/api/blobs/sha256:nothex").status_code == 400
    assert client.post("/api/blobs/md5:abc", content=b"x").status_code == 400


def test_upload_then_create_from_files(client: TestClient, smollm2_path: Path) -> None:
    data = smollm2_path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert (
        client.post(f"/api/blobs/{digest}", content=data).status_code == 200
    )  # the default model's
    response = client.post(
        "/api/create", json={"model": "from-file", "files": {"smol.gguf": digest}, "stream": False}
    )
    assert response.json() == {"status": "success"}
    details = client.post("/api/show", json={"model": "from-file"}).json()["details"]
    assert details["family"] == "llama" and details["quantization_level"] == "Q4_1"
