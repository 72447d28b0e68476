"""/v1/messages through the real ``anthropic`` SDK over real HTTP, on the scripted engine:
conversion both ways, the event stream, tool use, count_tokens, auth and error shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from corral.api.app import create_app
from corral.config import Settings
from corral.names import parse_name
from corral.store.create import create_model
from corral.store.manifests import MediaType
from corral.store.models import Store
from tests.fakes import FakeFactory
from tests.live import serve_in_thread
from tests.templates.library import QWEN25

MODEL = "toolsmith:1"
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CALL = ['<tool_call>\n{"name": "get_weather", ', '"arguments": {"city": "Paris"}}\n</tool_call>']


@pytest.fixture(scope="module")
def factory() -> FakeFactory:
    return FakeFactory()


@pytest.fixture(scope="module")
def url(
    tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path, factory: FakeFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("anthropic")
    store = Store(root / "models")
    digest = store.blobs.import_file(smollm2_path)
    create_model(store, parse_name(MODEL), digest, text_layers={MediaType.TEMPLATE: QWEN25})
    settings = Settings(
        home=root / "home", models=root / "models", no_default_model=True, api_keys="k-test"
    )
    with serve_in_thread(create_app(settings, engine_factory=factory)) as base:
        yield base


@pytest.fixture
def client(url: str, factory: FakeFactory) -> anthropic.Anthropic:
    factory.engine_kwargs = {}
    for engine in factory.engines:
        engine.words = ["Hello", " there", "!"]
    return anthropic.Anthropic(base_url=url, api_key="k-test", max_retries=0)


def last_prompt(factory: FakeFactory) -> str:
    return factory.engines[-1].calls[-1].prompt or ""


def test_create_converts_system_and_turns(
    client: anthropic.Anthropic, factory: FakeFactory
) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=32,
        system=[{"type": "text", "text": "You are terse."}],
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
            {"role": "user", "content": [{"type": "text", "text": "Again?"}]},
        ],
    )
    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant" and message.model == MODEL
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello there!"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 3
    prompt = last_prompt(factory)
    assert prompt.startswith("<|im_start|>system\nYou are terse.<|im_end|>")
    assert "<|im_start|>assistant\nHello.<|im_end|>" in prompt and "Again?" in prompt
    options = factory.engines[-1].calls[-1].params.sampling
    assert options["n_predict"] == 32


def test_stream_events_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello there!"
    assert final.content[0].text == "Hello there!"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3


def test_a_stop_sequence_is_named(client: anthropic.Anthropic) -> None:
    ask = [{"role": "user", "content": "Hi"}]
    whole = client.messages.create(
        model=MODEL, max_tokens=16, stop_sequences=["END", "ere"], messages=ask
    )
    assert whole.content[0].text == "Hello th"
    assert whole.stop_reason == "stop_sequence" and whole.stop_sequence == "ere"
    with client.messages.stream(
        model=MODEL, max_tokens=16, stop_sequences=["ere"], messages=ask
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "ere"
    unmatched = client.messages.create(
        model=MODEL, max_tokens=16, stop_sequences=["END"], messages=ask
    )
    assert unmatched.stop_reason == "end_turn" and unmatched.stop_sequence is None


def test_raw_stream_has_anthropic_event_names(url: str) -> None:
    body = {"model": MODEL, "max_tokens": 8, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    with httpx.stream(
        "POST", f"{url}/v1/messages", json=body, headers={"x-api-key": "k-test"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert events[:3] == ["message_start", "ping", "content_block_start"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(events[3:-3]) == {"content_block_delta"}


def test_tool_use_round_trip(client: anthropic.Anthropic, factory: FakeFactory) -> None:
    factory.engine_kwargs = {"words": CALL}
    for engine in factory.engines:
        engine.words = CALL
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    message = client.messages.create(model=MODEL, max_tokens=64, tools=[WEATHER], messages=ask)
    assert message.stop_reason == "tool_use"
    [use] = message.content
    assert use.type == "tool_use" and use.name == "get_weather"
    assert use.input == {"city": "Paris"} and use.id.startswith("toolu_")
    with client.messages.stream(model=MODEL, max_tokens=64, tools=[WEATHER], messages=ask) as s:
        streamed = s.get_final_message()
    assert streamed.content[0].type == "tool_use" and streamed.content[0].input == use.input
    client.messages.create(
        model=MODEL,
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            *ask,
            {"role": "assistant", "content": [use.model_dump()]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": use.id, "content": "18 C and sunny"}]},
        ],
    )  # fmt: skip
    prompt = last_prompt(factory)
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris"}}' in prompt
    assert "<tool_response>\n18 C and sunny\n</tool_response>" in prompt


def test_count_tokens_counts_the_rendered_prompt(
    client: anthropic.Anthropic, factory: FakeFactory
) -> None:
    counted = client.messages.count_tokens(
        model=MODEL, system="You are terse.", messages=[{"role": "user", "content": "Hi"}]
    )
    rendered = factory.engines[-1].tokenized[-1]
    assert rendered.startswith("<|im_start|>system\nYou are terse.")
    assert counted.input_tokens == len(rendered)  # the scripted engine: one token per char


def test_errors_in_anthropic_shape(client: anthropic.Anthropic, url: str) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(
            model="no-such:1", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"
    assert "no-such:1" in missing.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as forced:
        client.messages.create(
            model=MODEL, max_tokens=8, tools=[WEATHER], tool_choice={"type": "any"},
            messages=[{"role": "user", "content": "Hi"}],
        )  # fmt: skip
    assert 'tool_choice "any" is not supported' in forced.value.message
    headers = {"x-api-key": "k-test"}
    hi = [{"role": "user", "content": "Hi"}]
    no_max = httpx.post(
        f"{url}/v1/messages", headers=headers, json={"model": MODEL, "messages": hi}
    )
    assert no_max.status_code == 400
    assert no_max.json() == {"type": "error", "error": {
        "type": "invalid_request_error", "message": 'field "max_tokens" is required'}}  # fmt: skip
    extra = httpx.post(f"{url}/v1/messages", headers=headers, json={
        "model": MODEL, "max_tokens": 8, "container": "c1",
        "messages": [{"role": "user", "content": "Hi"}]})  # fmt: skip
    assert extra.status_code == 400
    assert "container: this field is not supported" in extra.json()["error"]["message"]
    document = httpx.post(f"{url}/v1/messages", headers=headers, json={
        "model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "data": "x"}}]}]})  # fmt: skip
    assert document.status_code == 400
    assert "document blocks are not supported" in document.json()["error"]["message"]


def test_api_key_as_x_api_key_or_bearer(url: str) -> None:
    body = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}
    wrong = anthropic.Anthropic(base_url=url, api_key="k-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as refused:
        wrong.messages.create(**body)
    assert refused.value.body["error"]["type"] == "authentication_error"
    bearer = httpx.post(f"{url}/v1/messages", json=body,
                        headers={"Authorization": "Bearer k-test"})  # fmt: skip
    assert bearer.status_code == 200
    none = httpx.post(f"{url}/v1/messages", json=body)
    assert none.status_code == 401 and none.json()["type"] == "error"


def test_what_claude_code_sends_is_accepted(url: str, factory: FakeFactory) -> None:
    """System turns inside messages, adaptive thinking, output_config, context_management:
    the fields Claude Code sends besides the documented basics."""
    body = {
        "model": MODEL,
        "max_tokens": 32000,
        "stream": True,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "x"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "system", "content": "Agent types: none."},
        ],
        "tools": [WEATHER],
        "thinking": {"type": "adaptive", "display": "omitted"},  # Claude Code 2.1
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "u"},
    }
    with httpx.stream(
        "POST", f"{url}/v1/messages?beta=true", json=body, headers={"x-api-key": "k-test"}
    ) as response:
        assert response.status_code == 200
        events = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert events[-1] == "message_stop"
    assert last_prompt(factory).startswith(
        "<|im_start|>system\nYou are terse.\n\nAgent types: none."
    )


def test_output_config_format_constrains_the_answer(url: str, factory: FakeFactory) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}],
            "output_config": {"format": {"type": "json_schema", "schema": schema}}}  # fmt: skip
    response = httpx.post(f"{url}/v1/messages", json=body, headers={"x-api-key": "k-test"})
    assert response.status_code == 200
    assert factory.engines[-1].calls[-1].params.json_schema == schema
