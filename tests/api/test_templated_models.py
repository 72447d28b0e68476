"""Models with a Modelfile TEMPLATE: corral renders the prompt and parses tool calls itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.names import parse_name
from corral.store.create import create_model
from corral.store.manifests import MediaType
from corral.store.models import Store
from tests.fakes import FakeFactory
from tests.templates.library import QWEN25  # Ollama's qwen2.5 library template

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def factory() -> FakeFactory:
    return FakeFactory()


@pytest.fixture
def client(tmp_path: Path, smollm2_path: Path, factory: FakeFactory) -> Iterator[TestClient]:
    store = Store(tmp_path / "models")
    digest = store.blobs.import_file(smollm2_path)
    create_model(
        store,
        parse_name("toolsmith:1"),
        digest,
        text_layers={MediaType.TEMPLATE: QWEN25, MediaType.SYSTEM: "You are terse."},
    )
    settings = Settings(home=tmp_path / "home", models=tmp_path / "models", no_default_model=True)
    with TestClient(create_app(settings, engine_factory=factory)) as test_client:
        yield test_client


def test_show_reports_tools_from_the_template(client: TestClient) -> None:
    body = client.post("/api/show", json={"model": "toolsmith:1"}).json()
    assert body["capabilities"] == ["completion", "tools"]
    assert body["template"] == QWEN25


def test_prompt_is_rendered_by_corral_with_tools(client: TestClient, factory: FakeFactory) -> None:
    client.post(
        "/api/chat",
        json={
            "model": "toolsmith:1",
            "stream": False,
            "tools": [WEATHER],
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
        },
    )
    [call] = factory.engines[0].calls
    assert call.kind == "complete"  # the engine only completes our prompt
    prompt = call.prompt or ""
    assert prompt.startswith("<|im_start|>system\nYou are terse.\n\n# Tools")
    assert '{"type": "function", "function": {"name":"get_weather"' in prompt
    assert prompt.endswith("<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n")


def test_tool_calls_in_the_output_become_tool_calls(
    client: TestClient, factory: FakeFactory
) -> None:
    factory.engine_kwargs = {
        "words": [
            '<tool_call>\n{"name": "get_weather", ',
            '"arguments": {"city": "Paris"}}',
            "\n</tool_call>",
        ]
    }
    lines = [
        json.loads(line)
        for line in client.post(
            "/api/chat",
            json={
                "model": "toolsmith:1",
                "tools": [WEATHER],
                "messages": [{"role": "user", "content": "Weather in Paris?"}],
            },
        ).text.splitlines()
    ]
    final = lines[-1]
    assert final["done"] is True
    assert final["message"]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    shown = "".join(line["message"]["content"] for line in lines)
    assert "<tool_call>" not in shown  # the call was held back, not streamed as text


def test_prose_streams_as_usual_with_tools(client: TestClient, factory: FakeFactory) -> None:
    body = client.post(
        "/api/chat",
        json={
            "model": "toolsmith:1",
            "stream": False,
            "tools": [WEATHER],
            "messages": [{"role": "user", "content": "Hi"}],
        },
    ).json()
    assert body["message"]["content"] == "Hello there!"
    assert "tool_calls" not in body["message"]


def test_tool_results_are_rendered_back(client: TestClient, factory: FakeFactory) -> None:
    client.post(
        "/api/chat",
        json={
            "model": "toolsmith:1",
            "stream": False,
            "tools": [WEATHER],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                    ],
                },
                {"role": "tool", "content": "18 C and sunny", "tool_name": "get_weather"},
            ],
        },
    )
    prompt = factory.engines[0].calls[0].prompt or ""
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris"}}' in prompt
    assert "<tool_response>\n18 C and sunny\n</tool_response>" in prompt


def test_generate_uses_the_legacy_branch(client: TestClient, factory: FakeFactory) -> None:
    client.post("/api/generate", json={"model": "toolsmith:1", "prompt": "Hi", "stream": False})
    prompt = factory.engines[0].calls[0].prompt or ""
    assert prompt == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
