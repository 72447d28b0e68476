"""The official ``openai`` SDK, unchanged, against a live corral on the real engine.

The SDK talks through ``httpx2``, which nothing here can intercept, so it needs a real server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, Field

from corral.api.app import create_app
from corral.config import Settings
from tests.fakes import FakeFactory
from tests.live import LiveServer, serve_in_thread

pytestmark = pytest.mark.clients

MODEL = "smollm2:135m"
HELLO: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello in one short sentence."}
]


@pytest.fixture
def client(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server.url + "/v1", api_key="x", max_retries=0)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL and model.object == "model" and model.created > 0
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model:1b")
    assert info.value.status_code == 404
    assert 'model "no-such-model:1b" not found' in info.value.message


def test_chat(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=24, temperature=0
    )
    assert response.id.startswith("chatcmpl-") and response.model == MODEL
    [choice] = response.choices
    assert choice.message.role == "assistant" and (choice.message.content or "").strip()
    assert choice.finish_reason in ("stop", "length")
    assert response.usage is not None
    assert response.usage.prompt_tokens > 0 and 0 < response.usage.completion_tokens <= 24
    total = response.usage.prompt_tokens + response.usage.completion_tokens
    assert response.usage.total_tokens == total


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=HELLO,
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip(), "the model said nothing"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 24


class Answer(BaseModel):
    city: str = Field(max_length=24)
    sunny: bool


def test_response_format_json_schema(client: openai.OpenAI) -> None:
    schema = Answer.model_json_schema()
    schema["additionalProperties"] = False
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe the weather in Paris as JSON."}],
        max_tokens=64,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        },
    )
    content = response.choices[0].message.content or ""
    answer = Answer.model_validate_json(content)  # grammar-constrained: parses and validates
    assert set(json.loads(content)) == {"city", "sunny"} and answer.city


def test_completions(client: openai.OpenAI) -> None:
    response = client.completions.create(
        model=MODEL, prompt="Count: one, two, three,", max_tokens=5, temperature=0
    )
    assert response.id.startswith("cmpl-") and response.object == "text_completion"
    [choice] = response.choices
    assert choice.text and choice.finish_reason == "length"
    assert response.usage is not None and response.usage.completion_tokens == 5


def test_completions_stream(client: openai.OpenAI) -> None:
    chunks = list(
        client.completions.create(
            model=MODEL, prompt="The sky is", max_tokens=6, stream=True, temperature=0
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices).strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_logprobs(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=8,
        logprobs=True,
        top_logprobs=2,
    )
    choice = response.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in tokens)
    text = client.completions.create(model=MODEL, prompt="The sky is", max_tokens=4, logprobs=2)
    columns = text.choices[0].logprobs
    assert columns is not None and columns.tokens and len(columns.tokens) == 4
    assert "".join(columns.tokens) == text.choices[0].text


def test_errors_carry_status_and_message(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert 'model "no-such-model" not found' in missing.value.message
    assert isinstance(missing.value.body, dict) and missing.value.body["code"] == "model_not_found"

    with pytest.raises(openai.BadRequestError) as no_tools:
        client.chat.completions.create(
            model=MODEL,
            messages=HELLO,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    assert f'"{MODEL}" does not support tools' in no_tools.value.message

    with pytest.raises(openai.BadRequestError) as unsupported:
        client.chat.completions.create(model=MODEL, messages=HELLO, n=2)
    assert isinstance(unsupported.value.body, dict) and unsupported.value.body["param"] == "n"


def test_embeddings(client: openai.OpenAI) -> None:
    """Needs ``Service.embed``; the SDK asks for base64 and decodes it itself."""
    response = client.embeddings.create(model=MODEL, input=["hello", "goodbye"])
    assert [d.index for d in response.data] == [0, 1]
    first, second = (d.embedding for d in response.data)
    assert len(first) == len(second) == 576  # SmolLM2-135M's embedding length
    assert first != second and any(v != 0 for v in first)
    as_floats = client.embeddings.create(model=MODEL, input="hello", encoding_format="float")
    assert as_floats.data[0].embedding == pytest.approx(first, rel=1e-5, abs=1e-6)
    assert response.usage.prompt_tokens > 0


@pytest.fixture
def crashing_server(tmp_path: Path) -> Iterator[str]:
    """corral in-process over HTTP, on a fake engine that dies after its first word: the one
    failure a live engine cannot be made to show on demand."""
    factory = FakeFactory(engine_kwargs={"crash_after": 1})
    app = create_app(Settings(home=tmp_path / "home"), engine_factory=factory)
    with serve_in_thread(app) as url:
        yield url


def test_error_mid_stream_raises_api_error(crashing_server: str) -> None:
    client = openai.OpenAI(base_url=crashing_server + "/v1", api_key="x", max_retries=0)
    stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    text: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            text.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(text) == "Hello"  # what came before the crash was delivered
    assert "stopped unexpectedly" in info.value.message
    assert isinstance(info.value.body, dict) and info.value.body["type"] == "server_error"
