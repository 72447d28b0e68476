"""Pure conversion of a native chat answer into a Responses API ``response`` object."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from corral.types import ChatResponse

__all__ = ["new_id", "response_object"]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _output(ident: str, final: ChatResponse) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    msg = final.message
    if msg.thinking:
        out.append(
            {
                "type": "reasoning",
                "id": new_id("rs"),
                "summary": [],
                "content": [{"type": "reasoning_text", "text": msg.thinking}],
            }
        )
    if msg.content or not msg.tool_calls:
        text = {"type": "output_text", "text": msg.content, "annotations": []}
        out.append(
            {
                "type": "message",
                "id": "msg_" + ident.removeprefix("resp_"),
                "status": "completed",
                "role": "assistant",
                "content": [text],
            }
        )
    for call in msg.tool_calls or []:
        out.append(
            {
                "type": "function_call",
                "id": new_id("fc"),
                "call_id": new_id("call"),
                "name": call.function.name,
                "arguments": json.dumps(call.function.arguments),
                "status": "completed",
            }
        )
    return out


def response_object(
    ident: str, model: str, final: ChatResponse, extra: dict[str, Any]
) -> dict[str, Any]:
    """``extra`` carries the request's echoed fields (instructions, metadata, ...)."""
    truncated = final.done_reason == "length"
    inp, outp = final.prompt_eval_count or 0, final.eval_count or 0
    cached = final.prompt_cached_count or 0
    return {
        "id": ident,
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if truncated else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "error": None,
        "model": model,
        "output": _output(ident, final),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": inp + cached,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": outp,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": inp + cached + outp,
        },
        **extra,
    }
