"""The official ``ollama`` Python package, unchanged, against a live corral."""

from __future__ import annotations

import json
from datetime import datetime

import ollama
import pytest

from tests.live import CALL_SCHEMA, WEATHER_TOOL, LiveServer, tools_model

pytestmark = pytest.mark.clients


@pytest.fixture
def client(live_server: LiveServer) -> ollama.Client:
    return ollama.Client(host=live_server.url)


def test_list_and_show(client: ollama.Client) -> None:
    names = [m.model for m in client.list().models]
    assert "smollm2:135m" in names
    [model] = [m for m in client.list().models if m.model == "smollm2:135m"]
    assert isinstance(model.modified_at, datetime)
    assert model.details is not None and model.details.quantization_level == "Q4_1"
    shown = client.show("smollm2:135m")
    assert shown.modelinfo is not None and shown.modelinfo["general.architecture"] == "llama"
    assert shown.capabilities == ["completion"]


def test_chat(client: ollama.Client) -> None:
    response = client.chat(
        model="smollm2:135m",
        messages=[{"role": "user", "content": "Hi!"}],
        options={"num_predict": 16},
    )
    assert response.message.role == "assistant" and response.message.content
    assert response.done and response.eval_count and response.eval_count > 0


def test_chat_stream(client: ollama.Client) -> None:
    chunks = list(
        client.chat(
            model="smollm2:135m",
            messages=[{"role": "user", "content": "Hi!"}],
            stream=True,
            options={"num_predict": 16},
        )
    )
    assert len(chunks) > 2 and chunks[-1].done and not chunks[0].done
    assert "".join(c.message.content or "" for c in chunks).strip()


def test_generate_and_stream(client: ollama.Client) -> None:
    response = client.generate(
        model="smollm2:135m", prompt="The sky is", options={"num_predict": 8}
    )
    assert response.response and response.done_reason in ("stop", "length")
    chunks = list(
        client.generate(
            model="smollm2:135m", prompt="The sky is", stream=True, options={"num_predict": 8}
        )
    )
    assert chunks[-1].done and (chunks[-1].eval_count or 0) > 0
    assert "".join(c.response for c in chunks).strip()


def test_ps_after_use(client: ollama.Client) -> None:
    client.generate(model="smollm2:135m", prompt="")
    [running] = [m for m in client.ps().models if m.model == "smollm2:135m"]
    assert running.expires_at is not None


def test_unknown_model_raises_response_error(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 404
    assert 'model "no-such-model" not found' in info.value.error


# A ChatML template in Ollama's Go syntax whose tool calls are bare JSON (llama 3 style).


def test_chat_with_tools_end_to_end(client: ollama.Client, live_server: LiveServer) -> None:
    """Tools rendered into the prompt, the answer constrained to a call by a JSON schema (a
    135M model's judgement is not under test), the call parsed into tool_calls."""
    tools_model(live_server)
    weather, call_schema = WEATHER_TOOL, CALL_SCHEMA
    assert "tools" in (client.show("smol-tools:1").capabilities or [])
    response = client.chat(
        model="smol-tools:1",
        tools=[weather],
        format=call_schema,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        options={"temperature": 0, "num_predict": 64},
    )
    [call] = response.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert isinstance(call.function.arguments["city"], str)
    follow_up = client.chat(
        model="smol-tools:1",
        tools=[weather],
        options={"num_predict": 16},
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            response.message,
            {"role": "tool", "content": "18 C", "tool_name": "get_weather"},
        ],
    )
    assert follow_up.done


def test_embed_and_legacy_embeddings(client: ollama.Client) -> None:
    response = client.embed(model="smollm2:135m", input=["first text", "second text"])
    assert len(response.embeddings) == 2 and len(response.embeddings[0]) == 576
    assert response.embeddings[0] != response.embeddings[1]
    legacy = client.embeddings(model="smollm2:135m", prompt="first text")
    assert len(legacy.embedding) == 576


def test_chat_format_json_schema(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string"}},
        "required": ["colour"],
    }
    response = client.chat(
        model="smollm2:135m",
        format=schema,
        options={"temperature": 0},
        messages=[{"role": "user", "content": "Name a colour as JSON."}],
    )
    assert isinstance(json.loads(response.message.content or "")["colour"], str)


def test_bad_option_type_raises_400(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.generate(model="smollm2:135m", prompt="x", options={"temperature": "hot"})
    assert info.value.status_code == 400 and "options.temperature" in info.value.error
