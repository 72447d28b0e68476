"""What a request is routed by: its model, and the start of its prompt.

Turn 2 of a conversation resends turn 1 first, so the system prompt and the first user
message are the same in every turn: hashing them sends the whole conversation to the replica
whose prompt cache already holds it. Only the first few KB count (a long document pasted into
turn 1 still routes by its beginning). A request with no answer in it yet (no assistant turn,
no tool call, no earlier response) is a conversation's first turn: no replica can hold it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["PREFIX_CHARS", "RouteKey", "route_key"]

PREFIX_CHARS = 4096


@dataclass(frozen=True, slots=True)
class RouteKey:
    model: str
    prefix: str
    previous_response: str | None = None  # /v1/responses: only its replica stored it
    first_turn: bool = False  # nothing answered yet: no replica can have it cached


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts / blocks
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


_ANSWERED = {"assistant", "tool", "function_call", "function_call_output"}


def _answered(items: Any) -> bool:
    """Whether a conversation already holds an answer (an assistant turn, a tool call)."""
    if not isinstance(items, list):
        return False
    return any(
        isinstance(item, dict) and (item.get("role") in _ANSWERED or item.get("type") in _ANSWERED)
        for item in items
    )


def _first_turns(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        parts.append(f"{role}:{_text(message.get('content'))}")
        if role == "user":
            break  # the system prompt(s) and the first user message
    return "\n".join(parts)


def route_key(body: bytes) -> RouteKey:
    """The key of a JSON request body; an unreadable body routes by nothing (any replica)."""
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return RouteKey("", "")
    if not isinstance(data, dict):
        return RouteKey("", "")
    model = str(data.get("model") or data.get("name") or "")
    system = _text(data.get("system")) or _text(data.get("instructions"))
    if "messages" in data:
        prefix = _first_turns(data["messages"])
        answered = _answered(data["messages"])
    elif isinstance(data.get("input"), list):
        prefix = _first_turns(data["input"])
        answered = _answered(data["input"])
    else:
        prefix = _text(data.get("prompt")) or _text(data.get("input"))
        answered = "context" in data  # /api/generate continuing an earlier answer
    previous = data.get("previous_response_id")
    previous = previous if isinstance(previous, str) else None
    key = f"{system}\n{prefix}"[:PREFIX_CHARS]
    return RouteKey(model, key, previous, first_turn=not answered and previous is None)
