"""The official ``anthropic`` SDK, unchanged, against a live corral on the real engine."""

from __future__ import annotations

import anthropic
import pytest

from tests.live import CALL_SCHEMA, WEATHER_TOOL, LiveServer, tools_model

pytestmark = pytest.mark.clients

MODEL = "smollm2:135m"


@pytest.fixture
def client(live_server: LiveServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live_server.url, api_key="x", max_retries=0)


def test_create_and_count_tokens(client: anthropic.Anthropic) -> None:
    messages = [{"role": "user", "content": "Name three colours of the rainbow. (anthropic)"}]
    message = client.messages.create(
        model=MODEL,
        max_tokens=24,
        extra_body={"temperature": 0},
        system="Be brief.",
        messages=messages,
    )
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert 0 < message.usage.output_tokens <= 24
    prompt = message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0)
    counted = client.messages.count_tokens(model=MODEL, system="Be brief.", messages=messages)
    # the engine's own count of the rendered prompt, give or take the BOS token it adds
    assert abs(counted.input_tokens - prompt) <= 1


def test_stop_sequence_is_the_one_the_engine_stopped_at(client: anthropic.Anthropic) -> None:
    ask = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    free = client.messages.create(
        model=MODEL, max_tokens=40, extra_body={"temperature": 0}, messages=ask
    )
    text = free.content[0].text
    assert "5" in text, text  # greedy SmolLM2 counts; the stop below must be reachable
    message = client.messages.create(
        model=MODEL,
        max_tokens=40,
        extra_body={"temperature": 0},
        stop_sequences=["5", "never-said"],
        messages=ask,
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "5"
    assert message.content[0].text == text[: text.index("5")]
    with client.messages.stream(
        model=MODEL,
        max_tokens=40,
        extra_body={"temperature": 0},
        stop_sequences=["5"],
        messages=ask,
    ) as s:
        streamed = s.get_final_message()
    assert streamed.stop_reason == "stop_sequence" and streamed.stop_sequence == "5"


def test_stream_matches_create(client: anthropic.Anthropic) -> None:
    ask = [{"role": "user", "content": "Say hello in one short sentence."}]
    whole = client.messages.create(
        model=MODEL, max_tokens=16, extra_body={"temperature": 0}, messages=ask
    )
    with client.messages.stream(
        model=MODEL, max_tokens=16, extra_body={"temperature": 0}, messages=ask
    ) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == whole.content[0].text == final.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(
            model="no-such-model:1b", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
        )
    assert info.value.body["error"]["type"] == "not_found_error"


def test_tool_use_round_trip(client: anthropic.Anthropic, live_server: LiveServer) -> None:
    """A tools-aware template on the real engine: the answer is a ``tool_use`` block (held to
    a call by a JSON schema), and the ``tool_result`` goes back in the next request."""
    model = tools_model(live_server)
    function = WEATHER_TOOL["function"]
    tool = {
        "name": function["name"],
        "description": function["description"],
        "input_schema": function["parameters"],
    }
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = client.messages.create(
        model=model,
        max_tokens=64,
        tools=[tool],  # type: ignore[list-item]
        messages=[question],  # type: ignore[list-item]
        extra_body={
            "temperature": 0,
            "output_config": {"format": {"type": "json_schema", "schema": CALL_SCHEMA}},
        },
    )
    assert first.stop_reason == "tool_use"
    [use] = [block for block in first.content if block.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input["city"], str)  # type: ignore[index]
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "18 C and sunny"}
    second = client.messages.create(
        model=model,
        max_tokens=16,
        tools=[tool],  # type: ignore[list-item]
        messages=[  # type: ignore[list-item]
            question,
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {"role": "user", "content": [result]},
        ],
    )
    assert second.stop_reason in ("end_turn", "max_tokens", "tool_use")
    # the call and its result were in the prompt: more than the question alone
    alone = client.messages.count_tokens(model=model, messages=[question])  # type: ignore[list-item]
    assert second.usage.input_tokens > alone.input_tokens + 5
