"""The official ``openai`` SDK's ``client.responses``, unchanged, against a live corral."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from corral.api.app import create_app
from corral.config import Settings
from tests.fakes import FakeFactory
from tests.live import CALL_SCHEMA, WEATHER_TOOL, LiveServer, serve_in_thread, tools_model

pytestmark = pytest.mark.clients

MODEL = "smollm2:135m"


@pytest.fixture
def client(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server.url + "/v1", api_key="x", max_retries=0)


def test_create_and_follow_up_sends_the_stored_turn(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL, input="Say hello.", instructions="Be brief.", max_output_tokens=8
    )
    assert first.id.startswith("resp_") and first.output_text
    assert first.usage is not None
    follow = client.responses.create(
        model=MODEL, input="Again.", previous_response_id=first.id, max_output_tokens=8
    )
    assert follow.usage is not None
    # the follow-up's prompt holds the first turn, so it is longer than the first prompt
    assert follow.usage.input_tokens > first.usage.input_tokens
    assert client.responses.retrieve(first.id).id == first.id
    # the SDK's paginated list of what the follow-up read: the new input first
    items = list(client.responses.input_items.list(follow.id))
    assert len(items) == 3 and items[0].type == "message" and items[0].role == "user"
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_builtin_tool_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=MODEL, input="x", tools=[{"type": "web_search"}])
    assert "web_search" in info.value.message


def test_stream_events_and_final_text(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(model=MODEL, input="Say hi.", max_output_tokens=8, stream=True)
    )
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    last = events[-1]
    # 8 tokens may cut the answer short: then the stream ends with response.incomplete
    assert last.type in ("response.completed", "response.incomplete")
    assert deltas and last.response.output_text == "".join(deltas)


def test_sdk_stream_helper(client: openai.OpenAI) -> None:
    # greedy, so the short answer ends well inside the limit: the SDK's helper only returns a
    # final response for response.completed, not for response.incomplete
    with client.responses.stream(
        model=MODEL, input="Say hi.", max_output_tokens=256, temperature=0
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas and final.output_text == "".join(deltas)


@pytest.fixture
def crashing_server(tmp_path: Path) -> Iterator[str]:
    """A fake engine that dies after its first word: a mid-stream failure on demand."""
    factory = FakeFactory(engine_kwargs={"crash_after": 1})
    app = create_app(Settings(home=tmp_path / "home"), engine_factory=factory)
    with serve_in_thread(app) as url:
        yield url


def test_error_mid_stream_is_reported(crashing_server: str) -> None:
    client = openai.OpenAI(base_url=crashing_server + "/v1", api_key="x", max_retries=0)
    events = list(client.responses.create(model=MODEL, input="hi", stream=True))
    kinds = [e.type for e in events]
    # the status line is already sent: the failure comes in-band, as OpenAI sends it
    assert kinds[-2:] == ["error", "response.failed"]
    error = events[-2]
    assert error.type == "error" and "stopped unexpectedly" in error.message


def test_function_call_round_trip(client: openai.OpenAI, live_server: LiveServer) -> None:
    """A tools-aware template on the real engine: a ``function_call`` item (held to a call by
    a JSON schema), then its ``function_call_output`` continuing the stored response."""
    model = tools_model(live_server)
    function = WEATHER_TOOL["function"]
    tool = {
        "type": "function",
        "name": function["name"],
        "description": function["description"],
        "parameters": function["parameters"],
    }
    first = client.responses.create(
        model=model,
        input="What is the weather in Paris?",
        tools=[tool],  # type: ignore[list-item]
        temperature=0,
        max_output_tokens=64,
        text={"format": {"type": "json_schema", "name": "call", "schema": CALL_SCHEMA}},
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18 C"}],
        tools=[tool],  # type: ignore[list-item]
        temperature=0,
        max_output_tokens=16,
    )
    # a 135M model may ramble past 16 tokens: either way the answer ended, and said why
    assert second.usage is not None and second.output
    if second.status == "incomplete":
        assert second.incomplete_details is not None
        assert second.incomplete_details.reason == "max_output_tokens"
    else:
        assert second.status == "completed"
    # the stored call and its output were in the prompt: more than the question alone
    alone = client.responses.create(model=model, input="What is the weather in Paris?",
                                    max_output_tokens=1, store=False)  # fmt: skip
    assert alone.usage is not None and second.usage.input_tokens > alone.usage.input_tokens + 5
