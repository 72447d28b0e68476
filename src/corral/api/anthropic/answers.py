"""Pure conversions of native chat answers into a Messages API ``message`` and into the
stream of events Anthropic's SDKs read (message_start, content_block_start/delta/stop,
message_delta, message_stop)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from corral.api.anthropic.protocol import Message, Usage
from corral.types import ChatResponse

__all__ = ["MessageEvents", "message", "new_id"]

Event = tuple[str, dict[str, Any]]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _usage(chunk: ChatResponse) -> Usage:
    return Usage(
        input_tokens=chunk.prompt_eval_count or 0,
        output_tokens=chunk.eval_count or 0,
        cache_read_input_tokens=chunk.prompt_cached_count,
    )


def _stop_reason(chunk: ChatResponse) -> str:
    if chunk.message.tool_calls:
        return "tool_use"
    if chunk.stop_sequence:
        return "stop_sequence"
    return "max_tokens" if chunk.done_reason == "length" else "end_turn"


def _tool_uses(chunk: ChatResponse) -> list[dict[str, Any]]:
    return [
        {"type": "tool_use", "id": new_id("toolu"), "name": c.function.name,
         "input": c.function.arguments}
        for c in chunk.message.tool_calls or ()
    ]  # fmt: skip


def message(chunk: ChatResponse, *, id: str, model: str, omit_thinking: bool = False) -> Message:
    """The whole answer (a folded stream) as one ``message``; ``omit_thinking`` keeps the
    thinking block and leaves its text out (``thinking.display: "omitted"``)."""
    content: list[dict[str, Any]] = []
    if chunk.message.thinking:
        text = "" if omit_thinking else chunk.message.thinking
        content.append({"type": "thinking", "thinking": text, "signature": ""})
    if chunk.message.content:
        content.append({"type": "text", "text": chunk.message.content})
    content.extend(_tool_uses(chunk))
    return Message(
        id=id,
        model=model,
        content=content,
        stop_reason=_stop_reason(chunk),
        stop_sequence=chunk.stop_sequence,
        usage=_usage(chunk),
    )


class MessageEvents:
    """Native chunks in, Anthropic events out; one content block open at a time."""

    def __init__(self, *, id: str, model: str, omit_thinking: bool = False) -> None:
        self.id = id
        self.model = model
        self.omit_thinking = omit_thinking
        self.started = False
        self.index = -1
        self.open: str | None = None  # the type of the block being streamed

    def _start(self) -> list[Event]:
        self.started = True
        start: dict[str, Any] = {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }  # fmt: skip
        return [("message_start", {"type": "message_start", "message": start}),
                ("ping", {"type": "ping"})]  # fmt: skip

    def _close(self) -> list[Event]:
        if self.open is None:
            return []
        self.open = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _block(self, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self.index += 1
        self.open = block["type"]
        start = {"type": "content_block_start", "index": self.index, "content_block": block}
        return [*events, ("content_block_start", start)]

    def _delta(self, kind: str, delta: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if self.open != kind:
            block = {"type": kind, kind: ""}
            events = self._block({**block, "signature": ""} if kind == "thinking" else block)
        body = {"type": "content_block_delta", "index": self.index, "delta": delta}
        return [*events, ("content_block_delta", body)]

    def convert(self, chunk: ChatResponse) -> list[Event]:
        events: list[Event] = [] if self.started else self._start()
        if chunk.message.thinking and self.omit_thinking:
            if self.open != "thinking":  # the block, without its text
                events += self._block({"type": "thinking", "thinking": "", "signature": ""})
        elif chunk.message.thinking:
            events += self._delta(
                "thinking", {"type": "thinking_delta", "thinking": chunk.message.thinking}
            )
        if chunk.message.content:
            events += self._delta("text", {"type": "text_delta", "text": chunk.message.content})
        if not chunk.done:
            return events
        for use in _tool_uses(chunk):
            arguments = json.dumps(use.pop("input"))
            events += self._block({**use, "input": {}})
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append(
                ("content_block_delta",
                 {"type": "content_block_delta", "index": self.index, "delta": delta})
            )  # fmt: skip
        events += self._close()
        usage = _usage(chunk).model_dump(exclude_none=True)
        stop = {"stop_reason": _stop_reason(chunk), "stop_sequence": chunk.stop_sequence}
        events.append(("message_delta", {"type": "message_delta", "delta": stop, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events
