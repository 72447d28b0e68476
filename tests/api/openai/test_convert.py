"""OpenAI requests -> native requests: every mapping, and every refusal naming its field."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from corral.api.openai.convert import (
    chat_request,
    completion_request,
    embed_request,
    include_usage,
)
from corral.api.openai.errors import InvalidParameter, UnsupportedParameter
from corral.api.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    StreamOptions,
)
from corral.types import Message, ToolCall, ToolCallFunction

HI = [{"role": "user", "content": "hi"}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def chat(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": HI, **fields})


@pytest.mark.parametrize(
    ("fields", "options"),
    [
        ({}, None),
        ({"max_tokens": 5}, {"num_predict": 5}),
        ({"max_completion_tokens": 7}, {"num_predict": 7}),
        ({"max_completion_tokens": 7, "max_tokens": 5}, {"num_predict": 7}),
        ({"stop": "\n"}, {"stop": ["\n"]}),
        ({"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
        ({"seed": 42, "temperature": 0}, {"seed": 42, "temperature": 0.0}),
        ({"top_p": 0.5}, {"top_p": 0.5}),
        (
            {"frequency_penalty": 0.5, "presence_penalty": -1},
            {"frequency_penalty": 0.5, "presence_penalty": -1.0},
        ),
        (
            {"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1},
            {"top_k": 20, "min_p": 0.05, "repeat_penalty": 1.1},
        ),
    ],
)
def test_chat_sampling_becomes_options(fields: dict[str, Any], options: Any) -> None:
    native = chat_request(chat(**fields))
    got = native.options.model_dump(exclude_none=True) if native.options else None
    assert got == options


@pytest.mark.parametrize(
    ("response_format", "native_format"),
    [
        (None, None),
        ({"type": "text"}, None),
        ({"type": "json_object"}, "json"),
        ({"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA}}, SCHEMA),
        ({"type": "json_schema", "json_schema": {"name": "n"}}, "json"),
    ],
)
def test_response_format_becomes_format(response_format: Any, native_format: Any) -> None:
    assert chat_request(chat(response_format=response_format)).format == native_format


def test_json_schema_without_its_object_is_refused() -> None:
    with pytest.raises(InvalidParameter) as info:
        chat_request(chat(response_format={"type": "json_schema"}))
    assert info.value.param == "response_format.json_schema"


def test_request_level_fields() -> None:
    native = chat_request(chat(stream=True, logprobs=True, top_logprobs=3, reasoning_effort="high"))
    assert native.model == "m" and native.stream is True
    assert native.logprobs is True and native.top_logprobs == 3
    assert native.think == "high"


@pytest.mark.parametrize(
    ("effort", "think"), [(None, None), ("none", False), ("minimal", "low"), ("medium", "medium")]
)
def test_reasoning_effort_becomes_think(effort: str | None, think: Any) -> None:
    assert chat_request(chat(reasoning_effort=effort)).think == think


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            [Message(role="system", content="be brief"), Message(role="user", content="hi")],
        ),
        ([{"role": "developer", "content": "rules"}], [Message(role="system", content="rules")]),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            ],
            [Message(role="user", content="a\nb")],
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    ],
                }
            ],
            [Message(role="user", content="what is this?", images=[PNG])],
        ),
        ([{"role": "assistant", "content": None}], [Message(role="assistant", content="")]),
        (
            [{"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}],
            [Message(role="assistant", content="no")],
        ),
    ],
)
def test_messages(messages: list[dict[str, Any]], expected: list[Message]) -> None:
    assert chat_request(chat(messages=messages)).messages == expected


def test_tool_round_trip_messages() -> None:
    messages = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
        {"role": "tool", "tool_call_id": "unknown", "content": "?"},
    ]
    native = chat_request(chat(messages=messages)).messages
    assert native[1] == Message(
        role="assistant",
        content="",
        tool_calls=[
            ToolCall(function=ToolCallFunction(name="get_weather", arguments={"city": "Paris"})),
            ToolCall(function=ToolCallFunction(name="get_time", arguments={})),
        ],
    )
    assert native[2] == Message(role="tool", content="sunny", tool_name="get_weather")
    assert native[3] == Message(role="tool", content="noon", tool_name="get_time")
    assert native[4].tool_name is None  # a result for a call we never saw: no name to give


def test_tools_pass_through_unless_tool_choice_none() -> None:
    assert chat_request(chat(tools=[WEATHER])).tools == [WEATHER]
    assert chat_request(chat(tools=[WEATHER], tool_choice="auto")).tools == [WEATHER]
    assert chat_request(chat(tools=[WEATHER], tool_choice="none")).tools is None
    assert chat_request(chat(tools=[])).tools is None


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"n": 2}, "n", "n > 1"),
        ({"logit_bias": {"50256": -100}}, "logit_bias", "logit_bias"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "audio"),
        ({"modalities": ["text", "audio"]}, "modalities", "audio"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction", "prediction"),
        ({"web_search_options": {}}, "web_search_options", "web_search_options"),
        ({"verbosity": "low"}, "verbosity", "verbosity"),
        ({"functions": [{"name": "f"}]}, "functions", "use 'tools'"),
        ({"function_call": "auto"}, "function_call", "use 'tools'"),
        ({"tools": [WEATHER], "tool_choice": "required"}, "tool_choice", 'only "auto" and "none"'),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
            "a specific tool",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
                        ],
                    }
                ]
            },
            "messages.0.content.0",
            "input_audio",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://example.com/cat.png"},
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0.image_url.url",
            "data: URIs",
        ),
    ],
)
def test_unsupported_fields_are_refused_by_name(
    fields: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        chat_request(chat(**fields))
    assert info.value.param == param and info.value.status_code == 400
    assert words in info.value.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"top_logprobs": 2}, "top_logprobs"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "function": {"name": "f", "arguments": "{not json"}}
                        ],
                    }
                ]
            },
            "messages.0.tool_calls.0.function.arguments",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "function": {"name": "f", "arguments": "[1, 2]"}}
                        ],
                    }
                ]
            },
            "messages.0.tool_calls.0.function.arguments",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.tool_call_id"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}
                        ],
                    }
                ]
            },
            "messages.0.content.0.image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!"}}
                        ],
                    }
                ]
            },
            "messages.0.content.0.image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "system",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{PNG}"},
                            }
                        ],
                    }
                ]
            },
            "messages.0.content",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages.0.content.0"),
    ],
)
def test_invalid_values_are_refused_by_name(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        chat_request(chat(**fields))
    assert info.value.param == param and info.value.status_code == 400


def test_tool_call_arguments_as_an_object_are_accepted() -> None:
    messages = [
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"x": 1}}}],
        }
    ]
    [message] = chat_request(chat(messages=messages)).messages
    assert message.tool_calls and message.tool_calls[0].function.arguments == {"x": 1}


# -- completions ------------------------------------------------------------------------------


def completion(**fields: Any) -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "prompt": "Once upon", **fields})


@pytest.mark.parametrize(
    ("fields", "prompt", "options"),
    [
        ({}, "Once upon", {"num_predict": 16}),  # OpenAI's default max_tokens
        ({"prompt": ["a time"], "max_tokens": 3}, "a time", {"num_predict": 3}),
        ({"max_tokens": None, "stop": "."}, "Once upon", {"stop": ["."]}),
        (
            {"temperature": 0, "seed": 1},
            "Once upon",
            {"num_predict": 16, "temperature": 0, "seed": 1},
        ),
    ],
)
def test_completion_is_raw_generate(fields: dict[str, Any], prompt: str, options: Any) -> None:
    native = completion_request(completion(**fields))
    assert native.raw is True and native.prompt == prompt
    assert native.options is not None and native.options.model_dump(exclude_none=True) == options


def test_completion_suffix_and_logprobs_pass_through() -> None:
    native = completion_request(completion(suffix="end", logprobs=2))
    assert native.suffix == "end" and native.logprobs is True and native.top_logprobs == 2
    assert completion_request(completion()).logprobs is False


@pytest.mark.parametrize(
    ("fields", "param", "error"),
    [
        ({"n": 2}, "n", UnsupportedParameter),
        ({"best_of": 3}, "best_of", UnsupportedParameter),
        ({"echo": True}, "echo", UnsupportedParameter),
        ({"logit_bias": {"1": 5}}, "logit_bias", UnsupportedParameter),
        ({"prompt": [1, 2, 3]}, "prompt", UnsupportedParameter),
        ({"prompt": [[1, 2]]}, "prompt", UnsupportedParameter),
        ({"prompt": ["a", "b"]}, "prompt", UnsupportedParameter),
        ({"prompt": ""}, "prompt", InvalidParameter),
        ({"prompt": []}, "prompt", InvalidParameter),
    ],
)
def test_completion_refusals(fields: dict[str, Any], param: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        completion_request(completion(**fields))
    assert getattr(info.value, "param", None) == param


def test_completion_accepts_harmless_defaults() -> None:
    native = completion_request(completion(n=1, best_of=1, echo=False, logit_bias={}))
    assert native.prompt == "Once upon"


# -- embeddings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "inputs", "dimensions"),
    [
        ({"input": "hello"}, ["hello"], None),
        ({"input": ["a", "b"], "dimensions": 8}, ["a", "b"], 8),
    ],
)
def test_embed_request(fields: dict[str, Any], inputs: list[str], dimensions: int | None) -> None:
    native = embed_request(EmbeddingRequest.model_validate({"model": "m", **fields}))
    assert native.model == "m" and native.inputs == inputs and native.dimensions == dimensions


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ([1, 2, 3], UnsupportedParameter),
        ([[1, 2]], UnsupportedParameter),
        ("", InvalidParameter),
        ([], InvalidParameter),
        (["a", ""], InvalidParameter),
    ],
)
def test_embed_request_refusals(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        embed_request(EmbeddingRequest.model_validate({"model": "m", "input": value}))
    assert getattr(info.value, "param", None) == "input"


@pytest.mark.parametrize(
    ("options", "expected"),
    [(None, False), (StreamOptions(), False), (StreamOptions(include_usage=True), True)],
)
def test_include_usage(options: StreamOptions | None, expected: bool) -> None:
    assert include_usage(options) is expected
