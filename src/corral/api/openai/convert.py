"""Pure conversions of OpenAI's /v1 requests into corral's native (Ollama-shaped) ones.

A documented field that corral cannot honour raises :class:`UnsupportedParameter` naming
it, rather than being dropped; ``tool_choice: "none"`` simply sends no tools.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from typing import Any

from corral.api.openai.errors import InvalidParameter, UnsupportedParameter
from corral.api.openai.protocol import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    ContentPart,
    EmbeddingRequest,
    ResponseFormat,
    StreamOptions,
)
from corral.types import (
    ChatRequest,
    EmbedRequest,
    Format,
    GenerateRequest,
    Message,
    Options,
)
from corral.types import ToolCall as NativeToolCall
from corral.types import ToolCallFunction as NativeToolCallFunction

__all__ = ["chat_request", "completion_request", "embed_request", "include_usage"]

_DATA_URI = re.compile(r"^data:(?P<mime>[^;,]*)(?P<params>(;[^;,]*)*),(?P<data>.*)$", re.DOTALL)


# OpenAI's sampling field -> native option (both request types share these names)
_SAMPLING = {
    "stop": "stop",
    "seed": "seed",
    "temperature": "temperature",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repeat_penalty",
}


def _options(
    req: ChatCompletionRequest | CompletionRequest, max_tokens: int | None
) -> Options | None:
    values: dict[str, Any] = {native: getattr(req, name) for name, native in _SAMPLING.items()}
    values["num_predict"] = max_tokens
    values = {k: v for k, v in values.items() if v is not None}
    return Options.model_validate(values) if values else None


def _format(response_format: ResponseFormat | None) -> Format:
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return "json"
    if response_format.json_schema is None:
        raise InvalidParameter(
            "response_format.json_schema",
            "response_format.json_schema is required when response_format.type is json_schema",
        )
    schema = response_format.json_schema.schema_
    return schema if schema is not None else "json"


def _image(url: str, param: str) -> str:
    """A data URI's base64 payload, as native ``images`` carry it."""
    match = _DATA_URI.match(url)
    if match is None:
        raise UnsupportedParameter(
            param, f"{param}: only data: URIs are supported (corral does not fetch image URLs)"
        )
    if ";base64" not in match["params"]:
        raise InvalidParameter(param, f"{param}: the data URI must be base64-encoded")
    data = match["data"].strip()
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidParameter(param, f"{param}: invalid base64 image data") from exc
    return data


def _content(content: str | list[ContentPart] | None, param: str) -> tuple[str, list[str]]:
    """A message's text (parts joined by newlines) and its images."""
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[str] = []
    for i, part in enumerate(content):
        where = f"{param}.{i}"
        if part.type == "text" and part.text is not None:
            texts.append(part.text)
        elif part.type == "refusal" and part.refusal is not None:
            texts.append(part.refusal)
        elif part.type == "image_url" and part.image_url is not None:
            images.append(_image(part.image_url.url, f"{where}.image_url.url"))
        elif part.type in ("input_audio", "file"):
            raise UnsupportedParameter(
                where, f"{where}: content parts of type {part.type} are not supported"
            )
        else:
            raise InvalidParameter(
                where, f"{where}: a {part.type} part needs a '{part.type}' field"
            )
    return "\n".join(texts), images


def _arguments(raw: str | dict[str, Any], param: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(param, f"{param} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidParameter(param, f"{param} must be a JSON object")
    return value


def _messages(messages: Sequence[ChatMessage]) -> list[Message]:
    out: list[Message] = []
    tool_names: dict[str, str] = {}  # tool_call id -> function name, for tool results
    for i, m in enumerate(messages):
        where = f"messages.{i}"
        text, images = _content(m.content, f"{where}.content")
        if images and m.role != "user":
            raise InvalidParameter(
                f"{where}.content", f"{where}: only user messages may carry images"
            )
        role = "system" if m.role == "developer" else m.role
        message = Message(role=role, content=text, images=images or None)
        if m.role == "assistant" and m.tool_calls:
            calls = []
            for j, call in enumerate(m.tool_calls):
                args = _arguments(
                    call.function.arguments, f"{where}.tool_calls.{j}.function.arguments"
                )
                fn = NativeToolCallFunction(name=call.function.name, arguments=args)
                calls.append(NativeToolCall(function=fn))
                tool_names[call.id] = call.function.name
            message.tool_calls = calls
        if m.role == "tool":
            if m.tool_call_id is None:
                raise InvalidParameter(f"{where}.tool_call_id", f"{where}.tool_call_id is required")
            message.tool_name = tool_names.get(m.tool_call_id) or m.name
        out.append(message)
    return out


def _refuse_unsupported(req: ChatCompletionRequest) -> None:
    if (req.n or 1) > 1:
        raise UnsupportedParameter("n", "n > 1 is not supported: corral returns one choice")
    if req.logit_bias:
        raise UnsupportedParameter("logit_bias")
    if req.audio is not None or any(m != "text" for m in req.modalities or ()):
        param = "audio" if req.audio is not None else "modalities"
        raise UnsupportedParameter(param, f"'{param}': audio output is not supported, only text")
    for name in ("prediction", "web_search_options", "verbosity"):
        if getattr(req, name) is not None:
            raise UnsupportedParameter(name)
    if req.functions is not None or req.function_call is not None:
        param = "functions" if req.functions is not None else "function_call"
        raise UnsupportedParameter(param, f"'{param}' is deprecated and not supported: use 'tools'")
    if req.tool_choice not in (None, "auto", "none"):
        what = '"required"' if req.tool_choice == "required" else "a specific tool"
        raise UnsupportedParameter(
            "tool_choice", f'tool_choice {what} is not supported: only "auto" and "none" are'
        )
    if req.top_logprobs and not req.logprobs:
        raise InvalidParameter("top_logprobs", "top_logprobs requires logprobs to be true")


def _think(effort: str | None) -> bool | str | None:
    if effort is None:
        return None
    if effort == "none":
        return False
    return "low" if effort == "minimal" else effort


def chat_request(req: ChatCompletionRequest) -> ChatRequest:
    _refuse_unsupported(req)
    tools = None
    if req.tools and req.tool_choice != "none":
        tools = [t.model_dump(exclude_none=True) for t in req.tools]
    options = _options(req, req.max_completion_tokens or req.max_tokens)
    return ChatRequest.model_validate(
        {
            "model": req.model,
            "messages": _messages(req.messages),
            "tools": tools,
            "format": _format(req.response_format),
            "options": options,
            "stream": bool(req.stream),
            "think": _think(req.reasoning_effort),
            "logprobs": bool(req.logprobs),
            "top_logprobs": req.top_logprobs or 0,
        }
    )


def _prompt(prompt: str | list[str] | list[int] | list[list[int]]) -> str:
    if isinstance(prompt, list):
        if prompt and not all(isinstance(p, str) for p in prompt):
            raise UnsupportedParameter(
                "prompt", "token arrays are not supported: send the prompt as text"
            )
        if len(prompt) > 1:
            raise UnsupportedParameter(
                "prompt", "batched prompts are not supported: send one per request"
            )
        prompt = str(prompt[0]) if prompt else ""
    if not prompt:
        raise InvalidParameter("prompt", "prompt must not be empty")
    return prompt


def completion_request(req: CompletionRequest) -> GenerateRequest:
    """Legacy completions continue raw text: no chat template (``raw``)."""
    if (req.n or 1) > 1:
        raise UnsupportedParameter("n", "n > 1 is not supported: corral returns one choice")
    if (req.best_of or 1) > 1:
        raise UnsupportedParameter("best_of", "best_of > 1 is not supported")
    if req.echo:
        raise UnsupportedParameter("echo", "echo is not supported")
    if req.logit_bias:
        raise UnsupportedParameter("logit_bias")
    options = _options(req, req.max_tokens)
    return GenerateRequest(
        model=req.model,
        prompt=_prompt(req.prompt),
        suffix=req.suffix,
        options=options,
        stream=bool(req.stream),
        raw=True,
        logprobs=req.logprobs is not None,
        top_logprobs=req.logprobs or 0,
    )


def embed_request(req: EmbeddingRequest) -> EmbedRequest:
    items = [req.input] if isinstance(req.input, str) else req.input
    if not all(isinstance(item, str) for item in items):
        raise UnsupportedParameter(
            "input", "token arrays are not supported: send the input as text"
        )
    texts = [str(item) for item in items]
    if not texts or not all(texts):
        raise InvalidParameter(
            "input", "input must be a non-empty string or list of non-empty strings"
        )
    return EmbedRequest(
        model=req.model,
        input=req.input if isinstance(req.input, str) else texts,
        dimensions=req.dimensions,
    )


def include_usage(options: StreamOptions | None) -> bool:
    return bool(options and options.include_usage)
