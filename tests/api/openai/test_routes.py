"""The /v1 routes over the real service and scheduler, with the scripted fake engine."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.types import EmbedRequest, EmbedResponse
from tests.api.openai.conftest import ScriptedFactory, sse
from tests.fakes import FakeFactory

MODEL = "smollm2:135m"
HI = [{"role": "user", "content": "hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def chat(v1: TestClient, **fields: Any) -> Any:
    return v1.post("/v1/chat/completions", json={"model": MODEL, "messages": HI, **fields})


def test_models(v1: TestClient) -> None:
    listed = v1.get("/v1/models").json()
    assert listed["object"] == "list"
    [card] = listed["data"]
    assert card["id"] == MODEL and card["object"] == "model" and card["owned_by"] == "library"
    assert isinstance(card["created"], int) and card["created"] > 1_600_000_000
    assert v1.get(f"/v1/models/{MODEL}").json() == card
    assert v1.get("/v1/models/library/smollm2:135m").json() == card  # a path, slashes and all


def test_missing_model_is_openai_404(v1: TestClient) -> None:
    response = v1.get("/v1/models/nope:1b")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": 'model "nope:1b" not found, try pulling it first',
            "type": "not_found_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    for path, body in [
        ("/v1/chat/completions", {"model": "nope", "messages": HI}),
        ("/v1/chat/completions", {"model": "nope", "messages": HI, "stream": True}),
        ("/v1/completions", {"model": "nope", "prompt": "x", "stream": True}),
    ]:
        response = v1.post(path, json=body)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["code"] == "model_not_found"


def test_chat(v1: TestClient, factory: FakeFactory) -> None:
    response = chat(
        v1,
        max_tokens=8,
        stop=["\n"],
        seed=3,
        temperature=0.2,
        top_p=0.9,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == MODEL
    assert body["choices"] == [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "Hello there!", "refusal": None},
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    [call] = factory.engines[0].calls
    assert call.kind == "chat" and call.messages == [{"role": "user", "content": "hi"}]
    sampling = call.params.sampling
    assert (sampling["n_predict"], sampling["stop"], sampling["seed"]) == (8, ["\n"], 3)
    assert (sampling["temperature"], sampling["top_p"]) == (0.2, 0.9)
    assert call.params.json_schema == {"type": "object"} and call.tools is None


def test_chat_json_object_mode(v1: TestClient, factory: FakeFactory) -> None:
    assert chat(v1, response_format={"type": "json_object"}).status_code == 200
    assert factory.engines[0].calls[0].params.json_mode is True


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_stream(v1: TestClient, include_usage: bool) -> None:
    response = chat(v1, stream=True, stream_options={"include_usage": include_usage})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")
    *chunks, done = sse(response.text)
    assert done == "[DONE]"
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello there!"
    if include_usage:
        *chunks, usage_chunk = chunks
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"] == {
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)


def test_tools_on_a_model_without_them_is_openai_400(v1: TestClient) -> None:
    for stream in (False, True):
        response = chat(v1, tools=[WEATHER], stream=stream)
        assert response.status_code == 400
        assert response.json()["error"]["message"] == f'"{MODEL}" does not support tools'
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_tool_choice_none_sends_no_tools(v1: TestClient, factory: FakeFactory) -> None:
    assert chat(v1, tools=[WEATHER], tool_choice="none").status_code == 200
    assert factory.engines[0].calls[0].tools is None


@pytest.fixture
def tool_client(
    seeded_models: Path, tmp_path: Path, tools_allowed: None
) -> tuple[TestClient, ScriptedFactory]:
    factory = ScriptedFactory(
        tool_calls=[{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        engine_kwargs={"words": []},
    )
    return scripted(seeded_models, tmp_path, factory), factory


def scripted(seeded_models: Path, tmp_path: Path, factory: ScriptedFactory) -> TestClient:
    settings = Settings(home=tmp_path / "home", models=seeded_models)
    return TestClient(create_app(settings, engine_factory=factory))


def test_tool_calls(tool_client: tuple[TestClient, ScriptedFactory]) -> None:
    client, factory = tool_client
    with client:
        body = chat(client, tools=[WEATHER]).json()
        streamed = sse(chat(client, tools=[WEATHER], stream=True).text)
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert factory.engines[0].calls[0].tools == [WEATHER]
    deltas = [c["choices"][0] for c in streamed[:-1]]
    [tool_delta] = [d["delta"]["tool_calls"] for d in deltas if "tool_calls" in d["delta"]]
    assert tool_delta[0]["index"] == 0 and tool_delta[0]["id"].startswith("call_")
    assert json.loads(tool_delta[0]["function"]["arguments"]) == {"city": "Paris"}
    assert deltas[-1]["finish_reason"] == "tool_calls"


def test_tool_results_go_back_to_the_engine(
    tool_client: tuple[TestClient, ScriptedFactory],
) -> None:
    client, factory = tool_client
    messages = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": "sunny, 21C"},
    ]
    with client:
        assert chat(client, tools=[WEATHER], messages=messages).status_code == 200
    sent = factory.engines[0].calls[0].messages
    assert sent is not None
    assert sent[1]["tool_calls"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert sent[2] == {"role": "tool", "content": "sunny, 21C", "name": "get_weather"}


def test_logprobs(seeded_models: Path, tmp_path: Path) -> None:
    factory = ScriptedFactory(logprobs=True)
    with scripted(seeded_models, tmp_path, factory) as client:
        body = chat(client, logprobs=True, top_logprobs=1).json()
        streamed = sse(chat(client, logprobs=True, top_logprobs=1, stream=True).text)
        text = client.post(
            "/v1/completions", json={"model": MODEL, "prompt": "x", "logprobs": 1}
        ).json()
    assert factory.engines[0].calls[0].params.top_logprobs == 1
    content = body["choices"][0]["logprobs"]["content"]
    assert [t["token"] for t in content] == ["Hello", " there", "!"]
    assert content[0]["top_logprobs"][1] == {"token": "?", "logprob": -3.0, "bytes": None}
    with_logprobs = [c["choices"][0]["logprobs"] for c in streamed[:-1] if c["choices"]]
    assert [lp["content"][0]["token"] for lp in with_logprobs if lp] == ["Hello", " there", "!"]
    columns = text["choices"][0]["logprobs"]
    assert columns["tokens"] == ["Hello", " there", "!"] and columns["text_offset"] == [0, 5, 11]
    assert columns["top_logprobs"][0] == {"Hello": -0.5, "?": -3.0}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 3}, "n"),
        ({"logit_bias": {"1": 1}}, "logit_bias"),
        ({"tools": [WEATHER], "tool_choice": "required"}, "tool_choice"),
        ({"modalities": ["audio"]}, "modalities"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages.0.role"),
        ({"temperature": 3}, "temperature"),
        ({"stream": "yes please"}, "stream"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools.0.type"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"model": None}, "model"),
    ],
)
def test_bad_chat_requests_are_400_naming_the_param(
    v1: TestClient, fields: dict[str, Any], param: str
) -> None:
    response = chat(v1, **fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert param.split(".")[0] in error["message"]


def test_engine_that_cannot_start_is_500_before_the_stream(
    v1: TestClient, factory: FakeFactory
) -> None:
    factory.fail_with = "llama-server exited with status 1"
    response = chat(v1, stream=True)
    assert response.status_code == 500
    assert response.json()["error"] == {
        "message": "llama-server exited with status 1",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_error_mid_stream_is_an_event_then_done(v1: TestClient, factory: FakeFactory) -> None:
    factory.engine_kwargs = {"crash_after": 1}
    response = chat(v1, stream=True)
    assert response.status_code == 200
    events = sse(response.text)
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["type"] == "server_error"
    assert "stopped unexpectedly" in events[-2]["error"]["message"]
    assert events[1]["choices"][0]["delta"] == {"content": "Hello"}


def test_completions(v1: TestClient, factory: FakeFactory) -> None:
    body = v1.post("/v1/completions", json={"model": MODEL, "prompt": "Once upon"}).json()
    assert body["id"].startswith("cmpl-") and body["object"] == "text_completion"
    assert body["choices"][0]["text"] == "Hello there!"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == 10
    [call] = factory.engines[0].calls
    assert call.kind == "complete" and call.prompt == "Once upon"  # raw: no chat template
    assert call.params.sampling["n_predict"] == 16


def test_completions_stream(v1: TestClient) -> None:
    response = v1.post(
        "/v1/completions",
        json={
            "model": MODEL,
            "prompt": "Once upon",
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    *chunks, done = sse(response.text)
    assert done == "[DONE]"
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "Hello there!"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"echo": True}, "echo"),
        ({"best_of": 2}, "best_of"),
        ({"prompt": [1, 2]}, "prompt"),
        ({"suffix": "end"}, None),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_bad_completions_are_400(v1: TestClient, fields: dict[str, Any], param: str | None) -> None:
    response = v1.post("/v1/completions", json={"model": MODEL, "prompt": "x", **fields})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.fixture
def embedded(v1: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[EmbedRequest]:
    """Stands in for ``Service.embed`` (arriving separately) with fixed vectors."""
    seen: list[EmbedRequest] = []

    async def embed(request: EmbedRequest) -> EmbedResponse:
        seen.append(request)
        vectors = [[0.25, -0.5, 1.0] for _ in request.inputs]
        return EmbedResponse(model=request.model, embeddings=vectors, prompt_eval_count=5)

    monkeypatch.setattr(v1.app.state.service, "embed", embed, raising=False)  # type: ignore[attr-defined]
    return seen


def test_embeddings(v1: TestClient, embedded: list[EmbedRequest]) -> None:
    body = v1.post(
        "/v1/embeddings", json={"model": MODEL, "input": ["a", "b"], "dimensions": 3}
    ).json()
    assert body["object"] == "list" and body["model"] == MODEL
    assert [(d["index"], d["embedding"]) for d in body["data"]] == [
        (0, [0.25, -0.5, 1.0]),
        (1, [0.25, -0.5, 1.0]),
    ]
    assert body["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    assert embedded[0].inputs == ["a", "b"] and embedded[0].dimensions == 3
    encoded = v1.post(
        "/v1/embeddings", json={"model": MODEL, "input": "a", "encoding_format": "base64"}
    ).json()
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert struct.unpack("<3f", raw) == (0.25, -0.5, 1.0)


def test_embeddings_refusals(v1: TestClient, embedded: list[EmbedRequest]) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input": [[1, 2]]}, "input"),
        ({"encoding_format": "int8"}, "encoding_format"),
    ]
    for fields, param in cases:
        response = v1.post("/v1/embeddings", json={"model": MODEL, "input": "a", **fields})
        assert response.status_code == 400 and response.json()["error"]["param"] == param
    assert embedded == []


def test_ollama_surface_keeps_its_own_errors(v1: TestClient) -> None:
    response = v1.post("/api/chat", json={"model": "nope", "messages": HI})
    assert response.status_code == 404
    assert response.json() == {"error": 'model "nope" not found, try pulling it first'}
    assert v1.post("/api/chat", json={"messages": []}).json() == {"error": "model is required"}
