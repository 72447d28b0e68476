"""Schemathesis against /openapi.json of a live server (real HTTP, uvicorn, scripted engine).

Every operation gets positive and negative cases; the checks are the issue's: no 5xx, and
every error body in its surface's shape (``{"error": "..."}`` on the Ollama API, OpenAI's
``{"error": {"message", "type", ...}}`` under /v1, Anthropic's ``{"type": "error", "error":
{"type", "message"}}`` under /v1/messages). The engine is the scripted fake so the run
stays bounded (a few hundred requests in seconds), and the registries are a scripted one that
knows no model (this machine has no network: a generated pull of a valid name would otherwise
depend on DNS); the routes, validation, limits, store and middleware above them are the real
ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from corral.api.app import create_app
from corral.config import Settings
from tests.fakes import FakeFactory
from tests.live import serve_in_thread

EXAMPLES = 20  # per operation and mode: about 700 requests, ~15 s


def _no_such_model(request: httpx.Request) -> httpx.Response:
    """Every registry and hub: the answer to a model it does not have."""
    body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
    return httpx.Response(404, json=body)


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    app = create_app(Settings(home=home, max_body_bytes=1 << 20), engine_factory=FakeFactory())
    app.state.registry.transport = httpx.MockTransport(_no_such_model)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(fuzz_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_url}/openapi.json")


_ANTHROPIC_TYPES = {"invalid_request_error", "not_found_error", "authentication_error"}


def assert_error_shape(path: str, status: int, body: Any) -> None:
    assert isinstance(body, dict) and "error" in body, f"{status} without an error body: {body!r}"
    error = body["error"]
    if path.startswith("/v1/messages"):
        assert body.get("type") == "error", f"not in Anthropic's shape: {body!r}"
        assert isinstance(error, dict) and isinstance(error.get("message"), str)
        assert error["message"] and error.get("type") in _ANTHROPIC_TYPES
    elif path.startswith("/v1/"):
        assert isinstance(error, dict), f"/v1 error not in OpenAI's shape: {body!r}"
        assert isinstance(error.get("message"), str) and error["message"]
        assert error.get("type") in {"invalid_request_error", "not_found_error", "server_error"}
    else:
        assert isinstance(error, str) and error, f"Ollama error not a string: {body!r}"


def _check(case: schemathesis.Case, base_url: str) -> None:
    response = case.call(base_url=base_url, timeout=30)
    status = response.status_code
    assert status < 500, f"{case.method} {case.path} -> {status}: {response.text[:500]}"
    if status >= 400 and case.method != "HEAD":
        assert_error_shape(case.path, status, response.json())


# The schemathesis pytest plugin does not load under this pytest; drive hypothesis directly.
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_no_5xx_and_errors_in_the_surface_shape(
    api_schema: Any, fuzz_url: str, mode: GenerationMode
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    unfuzzable: list[str] = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case) -> None:
            _check(case, fuzz_url)

        try:
            fuzz()
        except Unsatisfiable:
            # an operation with nothing to get wrong (no parameters, no body) has no negative case
            assert mode is GenerationMode.NEGATIVE, operation.label
            unfuzzable.append(operation.label)
    assert len(unfuzzable) < len(operations) // 2, unfuzzable


def test_the_schema_lists_every_surface(api_schema: Any) -> None:
    paths = set(api_schema.raw_schema["paths"])
    assert {"/api/chat", "/api/generate", "/v1/chat/completions", "/v1/models"} <= paths
    assert {"/v1/messages", "/v1/messages/count_tokens"} <= paths
    assert {"/v1/responses", "/v1/responses/{response_id}"} <= paths


def test_shape_check_can_fail() -> None:
    with pytest.raises(AssertionError):
        assert_error_shape("/v1/models", 400, {"error": "flat"})
    with pytest.raises(AssertionError):  # OpenAI's shape where Anthropic's is due
        assert_error_shape("/v1/messages", 400, {"error": {"message": "m", "type": "x"}})
    with pytest.raises(AssertionError):
        assert_error_shape("/api/chat", 400, {"error": {"message": "nested"}})
    with pytest.raises(AssertionError):
        assert_error_shape("/api/chat", 400, {"detail": "fastapi default"})
