"""Chats longer than the context are trimmed (Ollama's behaviour), on /api and /v1, and
/v1's usage counts the whole prompt. The fake engine refuses, as llama-server does, a prompt
of num_ctx tokens or more (one token per character of its rendering)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.names import parse_name
from corral.store.create import create_model
from corral.store.manifests import MediaType
from corral.store.models import Store
from tests.api.openai.conftest import sse
from tests.fakes import FakeEngine, FakeFactory
from tests.templates.library import QWEN25

MODEL = "smollm2:135m"
NUM_CTX = 1024  # the reserve for the answer is then a quarter: 256


@pytest.fixture
def factory() -> FakeFactory:
    return FakeFactory(engine_kwargs={"enforce_context": True})


def long_chat(turns: int = 60, size: int = 100, system: str = "Be brief.") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"question {i} ".ljust(size, "?")})
        messages.append({"role": "assistant", "content": f"answer {i} ".ljust(size, "!")})
    messages.append({"role": "user", "content": "Say hi"})
    return messages


def rendered(messages: list[dict[str, Any]]) -> int:
    """The fake engine's token count of what it was sent."""
    return len("".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>")


def ollama_chat(client: TestClient, messages: list[dict[str, Any]], **options: Any) -> Any:
    body = {
        "model": MODEL,
        "messages": messages,
        "stream": False,
        "options": {"num_ctx": NUM_CTX, **options},
    }
    return client.post("/api/chat", json=body)


def engine(factory: FakeFactory) -> FakeEngine:
    [only] = factory.engines
    return only


def test_a_long_chat_keeps_system_and_latest_messages(
    client: TestClient, factory: FakeFactory
) -> None:
    messages = long_chat()
    assert rendered(messages) > 10_000  # ten times the context
    response = ollama_chat(client, messages)
    assert response.status_code == 200, response.text
    assert response.json()["message"]["content"] == "Hello there!"
    sent = engine(factory).calls[-1].messages
    assert sent is not None
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[-1] == {"role": "user", "content": "Say hi"}
    assert sent[1]["role"] == "user" and sent[1:] == messages[len(messages) - len(sent) + 1 :]
    assert len(sent) < len(messages)
    assert rendered(sent) <= NUM_CTX - 256  # room left for the answer
    # one more turn would have been over that budget: the fewest messages dropped
    more = [messages[0], *messages[len(messages) - len(sent) - 1 :]]
    assert rendered(more) + 1 > NUM_CTX - 256
    assert 1 <= len(engine(factory).tokenized) <= 10  # binary search, not one count a message


def test_truncate_false_refuses_as_before(client: TestClient) -> None:
    body = {
        "model": MODEL,
        "messages": long_chat(),
        "stream": False,
        "truncate": False,
        "options": {"num_ctx": NUM_CTX},
    }
    response = client.post("/api/chat", json=body)
    assert response.status_code == 400
    assert "raise num_ctx" in response.json()["error"]


def test_a_short_chat_needs_no_token_count(client: TestClient, factory: FakeFactory) -> None:
    response = ollama_chat(client, long_chat(turns=2, size=20))
    assert response.status_code == 200
    assert engine(factory).tokenized == []
    assert len(engine(factory).calls[-1].messages or []) == 6


def test_num_predict_is_the_room_left(client: TestClient, factory: FakeFactory) -> None:
    assert ollama_chat(client, long_chat(), num_predict=600).status_code == 200
    sent = engine(factory).calls[-1].messages or []
    assert rendered(sent) <= NUM_CTX - 600
    assert sent[-1]["content"] == "Say hi"


def test_system_and_last_message_over_the_context_is_a_400(client: TestClient) -> None:
    response = ollama_chat(client, long_chat(turns=3, system="x" * 2000))
    assert response.status_code == 400
    error = response.json()["error"]
    assert f"({NUM_CTX} tokens)" in error and "raise num_ctx" in error
    assert "system prompt and the last message" in error


def test_openai_chat_is_trimmed_too(client: TestClient, factory: FakeFactory) -> None:
    body = {"model": MODEL, "messages": long_chat(turns=400, size=20), "max_tokens": 100}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    sent = engine(factory).calls[-1].messages or []
    assert sent[0]["role"] == "system" and sent[-1]["content"] == "Say hi"
    assert rendered(sent) <= 4096 - 100  # the server's default context, max_tokens reserved
    assert len(engine(factory).tokenized) <= 12  # 801 messages


def test_openai_context_error_shape(client: TestClient) -> None:
    messages = [{"role": "system", "content": "x" * 5000}, {"role": "user", "content": "hi"}]
    response = client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["type"] == "invalid_request_error" and "(4096 tokens)" in error["message"]


def test_generate_over_the_context_says_what_to_do(client: TestClient) -> None:
    body = {"model": MODEL, "prompt": "word " * 300, "raw": True, "stream": False}
    response = client.post("/api/generate", json={**body, "options": {"num_ctx": 256}})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "(1500 tokens)" in error and "(256 tokens)" in error
    assert "shorten it or raise num_ctx" in error


# -- a model with its own TEMPLATE: corral renders, and counts the rendering -----------------


@pytest.fixture
def templated(tmp_path: Path, smollm2_path: Path, factory: FakeFactory) -> Iterator[TestClient]:
    store = Store(tmp_path / "models")
    digest = store.blobs.import_file(smollm2_path)
    create_model(store, parse_name("qwenish:1"), digest, text_layers={MediaType.TEMPLATE: QWEN25})
    settings = Settings(home=tmp_path / "home", models=tmp_path / "models", no_default_model=True)
    with TestClient(create_app(settings, engine_factory=factory)) as test_client:
        yield test_client


def test_own_template_prompt_is_trimmed(templated: TestClient, factory: FakeFactory) -> None:
    body = {
        "model": "qwenish:1",
        "messages": long_chat(),
        "stream": False,
        "options": {"num_ctx": NUM_CTX},
    }
    response = templated.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    prompt = engine(factory).calls[-1].prompt or ""
    assert len(prompt) + 1 <= NUM_CTX - 256
    assert "Be brief." in prompt and "Say hi" in prompt
    assert "question 0 " not in prompt and "question 59 " in prompt


# -- usage: OpenAI's prompt_tokens is the whole prompt ------------------------------------


@pytest.fixture
def cached_factory() -> FakeFactory:
    """An answer whose prompt was 31 tokens, 30 of them from the engine's prompt cache."""
    return FakeFactory(engine_kwargs={"prompt_tokens": 1, "cached_tokens": 30})


@pytest.fixture
def cached(
    seeded_models: Path, cached_factory: FakeFactory, tmp_path: Path
) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / "home", models=seeded_models)
    with TestClient(create_app(settings, engine_factory=cached_factory)) as test_client:
        yield test_client


EXPECTED_USAGE = {
    "prompt_tokens": 31,
    "completion_tokens": 3,
    "total_tokens": 34,
    "prompt_tokens_details": {"cached_tokens": 30},
}
HI = [{"role": "user", "content": "Hi"}]


def test_openai_usage_counts_cached_tokens(cached: TestClient) -> None:
    body = cached.post("/v1/chat/completions", json={"model": MODEL, "messages": HI}).json()
    assert body["usage"] == EXPECTED_USAGE
    body = cached.post("/v1/completions", json={"model": MODEL, "prompt": "Hi"}).json()
    assert body["usage"] == EXPECTED_USAGE


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_openai_stream_usage_counts_cached_tokens(cached: TestClient, path: str) -> None:
    body: dict[str, Any] = {"model": MODEL, "stream": True}
    body.update({"messages": HI} if "chat" in path else {"prompt": "Hi"})
    body["stream_options"] = {"include_usage": True}
    *chunks, done = sse(cached.post(path, json=body).text)
    assert done == "[DONE]" and chunks[-1]["usage"] == EXPECTED_USAGE


def test_ollama_counts_only_evaluated_tokens(cached: TestClient) -> None:
    for path, body in [
        ("/api/chat", {"messages": HI}),
        ("/api/generate", {"prompt": "Hi"}),
    ]:
        response = cached.post(path, json={"model": MODEL, "stream": False, **body})
        final = response.json()
        assert final["prompt_eval_count"] == 1, path
        assert "prompt_cached_count" not in json.dumps(final)


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_streamed_chat_over_the_context_is_a_400_before_streaming(
    client: TestClient, path: str
) -> None:
    messages = [{"role": "system", "content": "x" * 5000}, {"role": "user", "content": "hi"}]
    response = client.post(path, json={"model": MODEL, "messages": messages, "stream": True})
    assert response.status_code == 400
    assert "raise num_ctx" in response.text
