"""The official ``anthropic`` SDK, unchanged, against a live corral on the real engine."""

from __future__ import annotations

import anthropic
import pytest

from tests.live import LiveServer

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
