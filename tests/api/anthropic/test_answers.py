"""Native chunks into Anthropic's message and events: thinking shown, or omitted on request."""

from __future__ import annotations

from datetime import UTC, datetime

from corral.api.anthropic.answers import MessageEvents, message
from corral.types import ChatResponse, Message


def chunk(content: str = "", thinking: str = "", done: bool = False) -> ChatResponse:
    return ChatResponse(
        model="m",
        created_at=datetime.now(UTC),
        message=Message(role="assistant", content=content, thinking=thinking or None),
        done=done,
        done_reason="stop" if done else None,
        eval_count=3 if done else None,
    )


def streamed(events: MessageEvents) -> list[tuple[str, dict]]:
    chunks = [chunk(thinking="Let me see"), chunk(thinking=" more"), chunk("Hi"), chunk(done=True)]
    return [event for c in chunks for event in events.convert(c)]


def test_thinking_is_streamed_as_its_own_block() -> None:
    events = streamed(MessageEvents(id="msg_1", model="m"))
    deltas = [body["delta"] for name, body in events if name == "content_block_delta"]
    assert [d["type"] for d in deltas] == ["thinking_delta", "thinking_delta", "text_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == "Let me see more"


def test_omitted_thinking_keeps_the_block_and_leaves_out_the_text() -> None:
    events = streamed(MessageEvents(id="msg_1", model="m", omit_thinking=True))
    starts = [body["content_block"] for name, body in events if name == "content_block_start"]
    assert starts == [{"type": "thinking", "thinking": "", "signature": ""},
                      {"type": "text", "text": ""}]  # fmt: skip
    deltas = [body["delta"] for name, body in events if name == "content_block_delta"]
    assert deltas == [{"type": "text_delta", "text": "Hi"}]
    whole = chunk("Hi", thinking="Let me see", done=True)
    assert message(whole, id="msg_1", model="m", omit_thinking=True).content == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "text", "text": "Hi"},
    ]
    assert message(whole, id="msg_1", model="m").content[0]["thinking"] == "Let me see"
