"""From an Ollama chat request to what the engine gets: messages, or a prompt we render.

Two paths, one behaviour:
- no TEMPLATE in the model: the engine applies the GGUF's own chat template (``--jinja``),
  parses tool calls and separates reasoning itself;
- a Modelfile TEMPLATE (Jinja, or Ollama's Go syntax as in every Ollama library model):
  corral renders it in its sandbox, the engine only completes the text, and tool calls are
  parsed here with the format the template implies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from corral.core.toolcalls import ToolCallFormat, ToolCallStream
from corral.store.models import LocalModel
from corral.templates import compile_template
from corral.types import Message

__all__ = ["engine_messages", "native_messages", "render_for_model", "tool_call_stream"]


def native_messages(model: LocalModel, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The Modelfile's SYSTEM and MESSAGEs first (SYSTEM unless the request brings its own)."""
    out: list[dict[str, Any]] = []
    if model.system and not any(m.role == "system" for m in messages):
        out.append({"role": "system", "content": model.system})
    out.extend(model.messages)
    out.extend(m.model_dump(exclude_none=True) for m in messages)
    return out


def engine_messages(native: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Native messages in the OpenAI shape llama-server's chat endpoint reads."""
    out: list[dict[str, Any]] = []
    for message in native:
        item: dict[str, Any] = {"role": message["role"], "content": message.get("content", "")}
        if message.get("images"):
            item["content"] = [
                {"type": "text", "text": item["content"]},
                *(
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}}
                    for image in message["images"]
                ),
            ]
        if message.get("tool_calls"):
            item["tool_calls"] = [
                {"type": "function", "function": call["function"]} for call in message["tool_calls"]
            ]
        if message.get("tool_name"):
            item["name"] = message["tool_name"]
        if message.get("thinking") and message["role"] == "assistant":
            item["reasoning_content"] = message["thinking"]
        out.append(item)
    return out


async def render_for_model(
    model: LocalModel,
    native: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    think: bool | str | None,
) -> str:
    """The prompt from the model's own TEMPLATE (compiled once per text, cached), rendered
    off the event loop: a long chat takes tens of milliseconds."""
    assert model.template is not None
    template = compile_template(model.template)
    return await asyncio.to_thread(template.render, native, tools, think=think)


def tool_call_stream(model: LocalModel, tools: list[dict[str, Any]] | None) -> ToolCallStream:
    names = {str(t.get("function", {}).get("name")) for t in tools or () if isinstance(t, dict)}
    return ToolCallStream(ToolCallFormat.for_template(model.template), names or None)
