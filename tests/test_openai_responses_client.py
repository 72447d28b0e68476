"""The official ``openai`` SDK's ``client.responses``, unchanged, against a live corral."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from corral.api.app import create_app
from corral.config import Settings
from tests.fakes import FakeFactory
from tests.live import LiveServer, serve_in_thread

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
