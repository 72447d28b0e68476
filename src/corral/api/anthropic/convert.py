"""Pure conversions of Messages API requests into corral's native chat request.

``tool_use`` blocks become the assistant's tool calls, ``tool_result`` blocks the tool
messages that answer them (named after the call they answer), ``system`` the system message.
A block type or a choice corral cannot honour is a 400 that names it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from corral.api.anthropic.protocol import Block, CountTokensRequest, MessagesRequest
from corral.errors import InvalidOption, UnsupportedFeature
from corral.types import ChatRequest, Message, Options, ToolCall, ToolCallFunction

__all__ = ["chat_request", "count_request"]


def _text(blocks: str | list[Block] | None, where: str) -> str:
    """The text of a string or of text blocks (``system``, a tool result's content)."""
    if blocks is None or isinstance(blocks, str):
        return blocks or ""
    texts = []
    for i, block in enumerate(blocks):
        if block.type != "text" or block.text is None:
            raise UnsupportedFeature(f"{where}.{i}: only text blocks are supported here")
        texts.append(block.text)
    return "\n".join(texts)


def _image(block: Block, where: str) -> str:
    source = block.source
    if source is None or source.type != "base64" or not source.data:
        raise UnsupportedFeature(
            f"{where}.source: only base64 image sources are supported (corral fetches no URLs)"
        )
    try:
        base64.b64decode(source.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidOption(f"{where}.source.data: invalid base64 image data") from exc
    return source.data


def _user(blocks: list[Block], where: str, names: dict[str, str]) -> list[Message]:
    """Tool results first (as the API requires them), then the user's own text and images."""
    results: list[Message] = []
    texts: list[str] = []
    images: list[str] = []
    for i, block in enumerate(blocks):
        at = f"{where}.{i}"
        if block.type == "text" and block.text is not None:
            texts.append(block.text)
        elif block.type == "image":
            images.append(_image(block, at))
        elif block.type == "tool_result":
            if not block.tool_use_id:
                raise InvalidOption(f"{at}.tool_use_id is required")
            text = _text(block.content, f"{at}.content")
            results.append(
                Message(role="tool", content=text, tool_name=names.get(block.tool_use_id))
            )
        else:
            raise UnsupportedFeature(f"{at}: {block.type} blocks are not supported in user turns")
    if texts or images or not results:
        results.append(Message(role="user", content="\n".join(texts), images=images or None))
    return results


def _assistant(blocks: list[Block], where: str, names: dict[str, str]) -> Message:
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    for i, block in enumerate(blocks):
        at = f"{where}.{i}"
        if block.type == "text" and block.text is not None:
            texts.append(block.text)
        elif block.type == "thinking":
            thinking.append(block.thinking or "")
        elif block.type == "tool_use":
            if not block.id or not block.name:
                raise InvalidOption(f"{at}: a tool_use block needs an id and a name")
            names[block.id] = block.name
            calls.append(
                ToolCall(function=ToolCallFunction(name=block.name, arguments=block.input or {}))
            )
        else:
            raise UnsupportedFeature(f"{at}: {block.type} blocks are not supported")
    return Message(
        role="assistant",
        content="".join(texts),
        thinking="".join(thinking) or None,
        tool_calls=calls or None,
    )


def _messages(req: CountTokensRequest) -> list[Message]:
    out: list[Message] = []
    system = _text(req.system, "system")
    if system:
        out.append(Message(role="system", content=system))
    names: dict[str, str] = {}  # tool_use id -> tool name, for the results that answer them
    for i, m in enumerate(req.messages):
        where = f"messages.{i}.content"
        if isinstance(m.content, str):
            out.append(Message(role=m.role, content=m.content))
        elif m.role == "system":
            out.append(Message(role="system", content=_text(m.content, where)))
        elif m.role == "assistant":
            out.append(_assistant(m.content, where, names))
        else:
            out.extend(_user(m.content, where, names))
    return out


def _tools(req: CountTokensRequest) -> list[dict[str, Any]] | None:
    choice = req.tool_choice.type if req.tool_choice else "auto"
    if choice in ("any", "tool"):
        raise UnsupportedFeature(
            f'tool_choice "{choice}" is not supported: only "auto" and "none" are'
        )
    if not req.tools or choice == "none":
        return None
    tools = []
    for i, tool in enumerate(req.tools):
        if tool.type not in (None, "custom"):
            raise UnsupportedFeature(
                f"tools.{i}: Anthropic's server tool {tool.type} is not available on corral"
            )
        function = {
            "name": tool.name,
            "description": tool.description or "",
            "parameters": tool.input_schema or {"type": "object", "properties": {}},
        }
        tools.append({"type": "function", "function": function})
    return tools


def _think(req: CountTokensRequest) -> bool | None:
    """``enabled`` asks for thinking (a 400 on a model that cannot), ``adaptive`` leaves it
    to the model (its template's default), ``disabled`` turns it off."""
    if req.thinking is None or req.thinking.type == "adaptive":
        return None
    return req.thinking.type == "enabled"


def count_request(req: CountTokensRequest) -> ChatRequest:
    return ChatRequest(
        model=req.model, messages=_messages(req), tools=_tools(req), think=_think(req)
    )


def chat_request(req: MessagesRequest) -> ChatRequest:
    values = {
        "num_predict": req.max_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "stop": req.stop_sequences,
    }
    options = Options.model_validate({k: v for k, v in values.items() if v is not None})
    native = count_request(req)
    if req.output_config and req.output_config.format:
        native.format = req.output_config.format.schema_
    native.options = options
    native.stream = req.stream
    return native
