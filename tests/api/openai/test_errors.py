"""OpenAI-shaped errors: typed exceptions by type, validation errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from corral.api.errors import install_error_handlers
from corral.api.openai.errors import (
    InvalidParameter,
    UnsupportedParameter,
    install_openai_error_rendering,
    openai_error,
)
from corral.errors import (
    EngineCrashed,
    InvalidModelName,
    ModelNotFound,
    RequestCancelled,
    ServerBusy,
    UnsupportedFeature,
)


@pytest.mark.parametrize(
    ("exc", "status", "kind", "param", "code"),
    [
        (ModelNotFound("x"), 404, "not_found_error", "model", "model_not_found"),
        (
            UnsupportedParameter("n", "n > 1"),
            400,
            "invalid_request_error",
            "n",
            "unsupported_parameter",
        ),
        (InvalidParameter("stop", "bad"), 400, "invalid_request_error", "stop", "invalid_value"),
        (
            UnsupportedFeature('"m" does not support tools'),
            400,
            "invalid_request_error",
            None,
            "unsupported_feature",
        ),
        (InvalidModelName("bad name"), 400, "invalid_request_error", None, None),
        (ServerBusy("server busy"), 503, "server_error", None, "server_busy"),
        (RequestCancelled("gone"), 499, "invalid_request_error", None, "request_cancelled"),
        (EngineCrashed("engine died"), 500, "server_error", None, None),
        (RuntimeError("oops"), 500, "server_error", None, None),
    ],
)
def test_exceptions_map_to_openai_errors(
    exc: Exception, status: int, kind: str, param: str | None, code: str | None
) -> None:
    got_status, body = openai_error(exc)
    assert got_status == status
    assert set(body) == {"error"}
    assert body["error"]["type"] == kind
    assert body["error"]["param"] == param and body["error"]["code"] == code
    assert body["error"]["message"]


class Body(BaseModel):
    model: str
    count: int = 0
    tags: str | list[str] = ""


@pytest.fixture
def tiny() -> TestClient:
    """A bare app with both surfaces' handlers, to check the dispatch by path."""
    app = FastAPI()

    @app.post("/v1/things")
    async def v1_things(body: Body) -> dict[str, Any]:
        raise ModelNotFound(body.model)

    @app.post("/api/things")
    async def api_things(body: Body) -> dict[str, Any]:
        raise ModelNotFound(body.model)

    install_error_handlers(app)
    install_openai_error_rendering(app)
    install_openai_error_rendering(app)  # twice changes nothing
    return TestClient(app)


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        ({}, "Missing required parameter: 'model'.", "model", "missing_required_parameter"),
        ({"model": "m", "count": "many"}, "Invalid value for 'count'", "count", "invalid_value"),
        ({"model": 5}, "Invalid value for 'model'", "model", "invalid_type"),
        ({"model": "m", "tags": [1]}, "Invalid value for 'tags.0'", "tags.0", "invalid_type"),
        ([], "Invalid request body", None, "invalid_value"),
    ],
)
def test_validation_errors_are_400_naming_the_field(
    tiny: TestClient, body: Any, message: str, param: str | None, code: str
) -> None:
    response = tiny.post("/v1/things", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith(message), error
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param and error["code"] == code


def test_malformed_json(tiny: TestClient) -> None:
    response = tiny.post(
        "/v1/things", content=b'{"model": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("Invalid JSON in request body")
    assert error["code"] == "invalid_json"


def test_dispatch_by_path(tiny: TestClient) -> None:
    v1 = tiny.post("/v1/things", json={"model": "x"})
    assert v1.status_code == 404 and v1.json()["error"]["code"] == "model_not_found"
    api = tiny.post("/api/things", json={"model": "x"})
    assert api.status_code == 404
    assert api.json() == {"error": 'model "x" not found, try pulling it first'}
    assert tiny.post("/api/things", json={}).json() == {"error": "model is required"}
    assert tiny.get("/v1/nothing").json()["error"]["type"] == "not_found_error"
    assert tiny.get("/api/nothing").json() == {"error": "404 page not found"}
    wrong_method = tiny.get("/v1/things")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_without_the_ollama_handlers_other_paths_keep_fastapi_defaults() -> None:
    app = FastAPI()

    @app.post("/other")
    async def other(body: Body) -> dict[str, Any]:
        return {}

    install_openai_error_rendering(app)
    client = TestClient(app)
    assert client.post("/other", json={}).status_code == 422
    assert client.get("/nothing").json() == {"detail": "Not Found"}
    assert client.get("/v1/nothing").json()["error"]["code"] == "not_found"
