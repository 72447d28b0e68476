"""Request limits (corral.api.limits): 413 for big bodies, 400 naming each per-request cap."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.api.limits import Limits, check_body
from corral.config import Settings
from corral.errors import LimitExceeded
from tests.fakes import FakeFactory

MODEL = "smollm2:135m"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def limited(seeded_models: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path / "home",
        models=seeded_models,
        max_body_bytes=4096,
        max_num_ctx=8192,
        max_num_predict=512,
        max_messages=3,
        max_image_bytes=1024,
    )
    with TestClient(create_app(settings, engine_factory=FakeFactory())) as client:
        yield client


def _image(size: int) -> str:
    return base64.b64encode(b"\x89PNG" + bytes(size - 4)).decode()


def test_body_over_the_cap_is_413(limited: TestClient) -> None:
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 5000}]}
    response = limited.post("/api/chat", json=big)
    assert response.status_code == 413
    assert "CORRAL_MAX_BODY_BYTES" in response.json()["error"]
    assert "4096" in response.json()["error"]
    openai_error = limited.post("/v1/chat/completions", json=big).json()["error"]
    assert "CORRAL_MAX_BODY_BYTES" in openai_error["message"]
    assert openai_error["type"] == "invalid_request_error"


def test_chunked_body_over_the_cap_is_413(limited: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "smollm2:135m", "prompt": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    response = limited.post("/api/generate", content=chunks())
    assert response.status_code == 413
    assert "CORRAL_MAX_BODY_BYTES" in response.json()["error"]


def test_body_under_the_cap_reaches_the_route(limited: TestClient) -> None:
    response = limited.post("/api/chat", json={"model": MODEL, "messages": HI, "stream": False})
    assert response.json()["message"]["content"] == "Hello there!"
    # invalid JSON is still the route's own 400, in its own words
    bad = limited.post(
        "/api/chat", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400 and "invalid JSON" in bad.json()["error"]


def test_blob_uploads_stream_past_the_json_cap(limited: TestClient) -> None:
    data = b"GGUF" + bytes(range(256)) * 64  # 16 KiB, four times the body cap
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert limited.post(f"/api/blobs/{digest}", content=data).status_code == 201
    assert limited.head(f"/api/blobs/{digest}").status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "limit", "param"),
    [
        ("/api/chat", {"messages": HI, "options": {"num_ctx": 8193}}, "MAX_NUM_CTX", "num_ctx"),
        ("/api/generate", {"options": {"num_predict": 513}}, "MAX_NUM_PREDICT", "num_predict"),
        ("/api/embed", {"input": "x", "options": {"num_ctx": 10**9}}, "MAX_NUM_CTX", "num_ctx"),
        ("/api/chat", {"messages": HI * 4}, "MAX_MESSAGES", "messages"),
        (
            "/api/chat",
            {"messages": [{"role": "user", "content": "?", "images": [_image(2000)]}]},
            "MAX_IMAGE_BYTES",
            "messages.0.images.0",
        ),
        ("/api/generate", {"prompt": "?", "images": [_image(2000)]}, "MAX_IMAGE_BYTES", "images.0"),
        ("/api/create", {"from": MODEL, "parameters": {"num_ctx": 9000}}, "MAX_NUM_CTX", "num_ctx"),
    ],
)
def test_ollama_caps_are_400_naming_the_limit(
    limited: TestClient, path: str, body: dict[str, object], limit: str, param: str
) -> None:
    response = limited.post(path, json={"model": MODEL, "stream": False, **body})
    assert response.status_code == 400
    error = response.json()["error"]
    assert f"CORRAL_{limit}" in error and param in error


@pytest.mark.parametrize(
    ("path", "body", "limit", "param"),
    [
        (
            "/v1/chat/completions",
            {"messages": HI, "max_tokens": 513},
            "MAX_NUM_PREDICT",
            "max_tokens",
        ),
        (
            "/v1/chat/completions",
            {"messages": HI, "max_completion_tokens": 10**6},
            "MAX_NUM_PREDICT",
            "max_completion_tokens",
        ),
        ("/v1/completions", {"prompt": "x", "max_tokens": 600}, "MAX_NUM_PREDICT", "max_tokens"),
        ("/v1/chat/completions", {"messages": HI * 4}, "MAX_MESSAGES", "messages"),
        (
            "/v1/chat/completions",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64," + _image(2000)},
                            },
                        ],
                    }
                ]
            },
            "MAX_IMAGE_BYTES",
            "messages.0.content.1.image_url",
        ),
    ],
)
def test_openai_caps_are_400_in_openai_shape(
    limited: TestClient, path: str, body: dict[str, object], limit: str, param: str
) -> None:
    response = limited.post(path, json={"model": MODEL, **body})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert f"CORRAL_{limit}" in error["message"]


def test_values_at_the_caps_are_served(limited: TestClient) -> None:
    body = {
        "model": MODEL,
        "stream": False,
        "messages": HI * 3,
        "options": {"num_ctx": 8192, "num_predict": 512},
    }
    assert limited.post("/api/chat", json=body).status_code == 200
    # Ollama's negative num_predict (until done / fill the context) is bounded by num_ctx
    assert limited.post("/api/generate", json={"model": MODEL, "options": {"num_predict": -2}})
    openai_body = {"model": MODEL, "messages": HI, "max_tokens": 512}
    assert limited.post("/v1/chat/completions", json=openai_body).status_code == 200


def test_check_body_ignores_wrong_types() -> None:
    limits = Limits(1024, 16, 16, 10, 1024)
    # the route's validation answers these; the limit check must not crash on them
    for body in (
        {"options": "x", "messages": "y", "images": 3},
        {"options": {"num_ctx": True, "num_predict": "99"}, "max_tokens": 1.5e9},
        {"messages": [None, 1], "images": [None]},
        {"messages": [{"content": [None, {"image_url": 3}, {"image_url": "data:x,AAAA"}]}]},
    ):
        check_body(body, limits)
    check_body({"images": [_image(1024)], "messages": HI * 10}, limits)  # at the caps
    with pytest.raises(LimitExceeded) as info:
        check_body({"options": {"num_ctx": 17}}, limits)
    assert info.value.limit == "CORRAL_MAX_NUM_CTX" and info.value.status_code == 400
