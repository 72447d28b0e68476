"""Pure conversion of a Responses request (plus the stored earlier turns) to a native chat.

Fields corral cannot honour raise :class:`UnsupportedParameter` naming them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from corral.api.openai.errors import InvalidParameter, UnsupportedParameter
from corral.api.responses.protocol import ContentPart, InputItem, ResponseRequest, TextConfig
from corral.types import ChatRequest, Format, Message, Options, ToolCall, ToolCallFunction

__all__ = ["chat_request", "input_items"]

_ROLE = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def input_items(req: ResponseRequest) -> list[InputItem]:
    """The request's ``input`` as a list of items (a bare string is one user message)."""
    if isinstance(req.input, str):
        return [InputItem(type="message", role="user", content=req.input)]
    return list(req.input)


def _text(content: str | list[ContentPart] | None, param: str) -> tuple[str, list[str]]:
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[str] = []
    for i, part in enumerate(content):
        if part.type == "input_image":
            url = part.image_url or ""
            if not url.startswith("data:") or "," not in url:
                raise InvalidParameter(
                    f"{param}[{i}].image_url", "input_image needs a base64 data: URL"
                )
            images.append(url.split(",", 1)[1])
        else:
            texts.append(part.text or part.refusal or "")
    return "".join(texts), images


def _message(item: InputItem, param: str) -> Message:
    if item.type == "function_call":
        if not item.name:
            raise InvalidParameter(f"{param}.name", "a function_call item needs a name")
        try:
            args = json.loads(item.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidParameter(
                f"{param}.arguments", f"function_call arguments are not JSON: {exc}"
            ) from exc
        if not isinstance(args, dict):
            raise InvalidParameter(f"{param}.arguments", "arguments must be a JSON object")
        call = ToolCall(function=ToolCallFunction(name=item.name, arguments=args))
        return Message(role="assistant", tool_calls=[call])
    if item.type == "function_call_output":
        return Message(role="tool", content=item.output or "", tool_name=item.name)
    if item.role is None:
        raise InvalidParameter(f"{param}.role", "a message item needs a role")
    text, images = _text(item.content, f"{param}.content")
    return Message(role=_ROLE[item.role], content=text, images=images or None)


def _messages(items: Sequence[InputItem]) -> list[Message]:
    out: list[Message] = []
    for i, item in enumerate(items):
        msg = _message(item, f"input[{i}]")
        # consecutive function calls are one assistant turn with several tool calls
        if msg.tool_calls and out and out[-1].tool_calls and not out[-1].content:
            out[-1].tool_calls = [*out[-1].tool_calls, *msg.tool_calls]
        else:
            out.append(msg)
    return out


def _format(text: TextConfig | None) -> Format:
    if text is None or text.format is None or text.format.type == "text":
        return None
    if text.format.type == "json_object" or text.format.schema_ is None:
        return "json"
    return text.format.schema_


def _tools(req: ResponseRequest) -> list[dict[str, Any]] | None:
    if not req.tools or req.tool_choice == "none":
        return None
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(req.tools):
        if tool.type != "function":
            raise UnsupportedParameter(
                f"tools[{i}].type", f"tool type '{tool.type}' is not supported; use 'function'"
            )
        if not tool.name:
            raise InvalidParameter(f"tools[{i}].name", "a function tool needs a name")
        fn: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters or {}}
        if tool.description:
            fn["description"] = tool.description
        tools.append({"type": "function", "function": fn})
    return tools


def _refuse_unsupported(req: ResponseRequest) -> None:
    if req.background:
        raise UnsupportedParameter("background", "background responses are not supported")
    if req.conversation is not None:
        raise UnsupportedParameter("conversation", "conversation objects are not supported")
    if req.include:
        raise UnsupportedParameter("include", f"include values {req.include} are not supported")
    if isinstance(req.tool_choice, dict) or req.tool_choice not in (None, "auto", "none"):
        raise UnsupportedParameter("tool_choice", "only tool_choice 'auto' or 'none' is supported")


def chat_request(req: ResponseRequest, history: Sequence[InputItem] = ()) -> ChatRequest:
    """The native chat for ``req``; ``history`` is the stored earlier input + output items."""
    _refuse_unsupported(req)
    messages = _messages([*history, *input_items(req)])
    if req.instructions:
        # instructions are not carried over from a previous response, as in OpenAI's API
        messages.insert(0, Message(role="system", content=req.instructions))
    values = {
        "num_predict": req.max_output_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
    }
    options = {k: v for k, v in values.items() if v is not None}
    effort = req.reasoning.effort if req.reasoning else None
    return ChatRequest(
        model=req.model,
        messages=messages,
        tools=_tools(req),
        format=_format(req.text),
        options=Options.model_validate(options) if options else None,
        stream=req.stream,
        think=None if effort is None else ("low" if effort == "minimal" else effort),
    )
