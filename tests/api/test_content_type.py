"""Bodies are read as JSON whatever their Content-Type (curl -d sends a form type)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

GENERATE = json.dumps({"model": "smollm2:135m", "prompt": "hi", "stream": False}).encode()
CHAT = json.dumps(
    {"model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}]}
).encode()


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", None, "text/plain; charset=utf-8"]
)
def test_json_bodies_whatever_the_content_type(
    client: TestClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/generate", content=GENERATE, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["done"] is True
    response = client.post("/v1/chat/completions", content=CHAT, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"


def test_a_form_body_is_still_a_clear_400(client: TestClient) -> None:
    response = client.post(
        "/api/generate",
        content=b"model=smollm2&prompt=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert "error" in response.json()
