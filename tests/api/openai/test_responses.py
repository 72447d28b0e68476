"""Native answers -> OpenAI objects and stream chunks."""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime
from typing import Any

import pytest

from corral.api.openai.protocol import ChatCompletionChunk, Completion
from corral.api.openai.responses import (
    ChatChunks,
    CompletionChunks,
    chat_completion,
    completion,
    completion_logprobs,
    embedding_response,
    find_model,
    finish_reason,
    model_list,
    new_id,
    openai_logprobs,
    openai_tool_calls,
    usage,
)
from corral.errors import ModelNotFound
from corral.types import (
    ChatResponse,
    EmbedResponse,
    GenerateResponse,
    Logprob,
    Message,
    ToolCall,
    ToolCallFunction,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def chat_chunk(content: str = "", **final: Any) -> ChatResponse:
    message = Message(role="assistant", content=content, tool_calls=final.pop("tool_calls", None))
    return ChatResponse(model="m", created_at=NOW, message=message, **final)


DONE = {"done": True, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 2}


@pytest.mark.parametrize(
    ("done_reason", "tool_calls", "expected"),
    [
        ("stop", False, "stop"),
        ("length", False, "length"),
        (None, False, "stop"),
        ("load", False, "stop"),
        ("stop", True, "tool_calls"),
        ("length", True, "tool_calls"),
    ],
)
def test_finish_reason(done_reason: str | None, tool_calls: bool, expected: str) -> None:
    assert finish_reason(done_reason, tool_calls=tool_calls) == expected


@pytest.mark.parametrize(
    ("prompt", "evals", "expected"),
    [(5, 2, (5, 2, 7)), (None, None, (0, 0, 0)), (10, None, (10, 0, 10))],
)
def test_usage(prompt: int | None, evals: int | None, expected: tuple[int, int, int]) -> None:
    got = usage(chat_chunk(done=True, prompt_eval_count=prompt, eval_count=evals))
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == expected
    assert got.prompt_tokens_details is not None and got.prompt_tokens_details.cached_tokens == 0


def test_usage_counts_the_whole_prompt_with_the_cached_part() -> None:
    """OpenAI's prompt_tokens is evaluated + cached; Ollama's prompt_eval_count only the
    evaluated part, and the cached count never shows on the native (/api) wire."""
    native = chat_chunk(done=True, prompt_eval_count=1, prompt_cached_count=30, eval_count=4)
    got = usage(native)
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (31, 4, 35)
    assert got.prompt_tokens_details is not None and got.prompt_tokens_details.cached_tokens == 30
    wire = json.loads(native.model_dump_json(exclude_none=True))
    assert wire["prompt_eval_count"] == 1 and "prompt_cached_count" not in wire
    legacy = GenerateResponse(
        model="m", created_at=NOW, done=True, prompt_eval_count=2, prompt_cached_count=5
    )
    assert usage(legacy).prompt_tokens == 7


@pytest.mark.parametrize(
    ("native", "name", "arguments"),
    [
        (
            ToolCall(function=ToolCallFunction(name="f", arguments={"city": "Zürich"})),
            "f",
            '{"city": "Zürich"}',
        ),
        ({"function": {"name": "g", "arguments": {"n": 1}}}, "g", '{"n": 1}'),  # engine dicts
        ({"function": {"name": "h", "arguments": "not json"}}, "h", "not json"),
        ({"function": {"name": "k"}}, "k", "{}"),
    ],
)
def test_tool_calls_get_ids_and_string_arguments(native: Any, name: str, arguments: str) -> None:
    [call] = openai_tool_calls([native])
    assert call.id.startswith("call_") and len(call.id) > 10
    assert call.type == "function"
    assert call.function.name == name and call.function.arguments == arguments


def test_tool_call_ids_are_unique() -> None:
    calls = openai_tool_calls([{"function": {"name": "f", "arguments": {}}}] * 3)
    assert len({c.id for c in calls}) == 3
    assert new_id("chatcmpl").startswith("chatcmpl-") and new_id("cmpl").startswith("cmpl-")


def test_chat_completion() -> None:
    body = chat_completion(chat_chunk("Hello!", **DONE), id="chatcmpl-1", created=7)
    assert body.model_dump(mode="json") == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 7,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "total_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
        "system_fingerprint": "fp_corral",
    }


def test_chat_completion_with_tool_calls_has_null_content() -> None:
    calls = [ToolCall(function=ToolCallFunction(name="f", arguments={"a": 1}))]
    body = chat_completion(chat_chunk("", tool_calls=calls, **DONE), id="x", created=1)
    message = body.model_dump(mode="json")["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert body.choices[0].finish_reason == "tool_calls"


def test_thinking_becomes_reasoning_content() -> None:
    native = chat_chunk("42", **DONE)
    native.message.thinking = "let me see"
    message = chat_completion(native, id="x", created=1).model_dump(mode="json")
    assert message["choices"][0]["message"]["reasoning_content"] == "let me see"


LOGPROBS = [
    Logprob(
        token="Hel",
        logprob=-0.1,
        bytes=[72, 101, 108],
        top_logprobs=[{"token": "Hel", "logprob": -0.1}, {"token": "Hi", "logprob": -2.5}],
    ),
    Logprob(token="lo", logprob=-0.2),
]


def test_chat_logprobs() -> None:
    assert openai_logprobs(None) is None and openai_logprobs([]) is None
    got = openai_logprobs(LOGPROBS)
    assert got is not None and got.model_dump(mode="json") == {
        "content": [
            {
                "token": "Hel",
                "logprob": -0.1,
                "bytes": [72, 101, 108],
                "top_logprobs": [
                    {"token": "Hel", "logprob": -0.1, "bytes": None},
                    {"token": "Hi", "logprob": -2.5, "bytes": None},
                ],
            },
            {"token": "lo", "logprob": -0.2, "bytes": None, "top_logprobs": []},
        ],
        "refusal": None,
    }


def test_completion_logprobs_columns() -> None:
    got = completion_logprobs(LOGPROBS, offset=4)
    assert got is not None
    assert got.tokens == ["Hel", "lo"] and got.token_logprobs == [-0.1, -0.2]
    assert got.text_offset == [4, 7]
    assert got.top_logprobs == [{"Hel": -0.1, "Hi": -2.5}, {}]


def test_completion_object() -> None:
    native = GenerateResponse(
        model="m",
        created_at=NOW,
        response=" a time",
        done=True,
        done_reason="length",
        prompt_eval_count=3,
        eval_count=16,
    )
    body = completion(native, id="cmpl-1", created=9).model_dump(mode="json")
    assert body["object"] == "text_completion" and body["id"] == "cmpl-1"
    assert body["choices"] == [
        {"finish_reason": "length", "index": 0, "logprobs": None, "text": " a time"}
    ]
    assert body["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 16,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def dump(chunks: list[ChatCompletionChunk] | list[Completion]) -> list[dict[str, Any]]:
    return [json.loads(c.model_dump_json()) for c in chunks]


@pytest.mark.parametrize("include", [False, True])
def test_chat_chunks(include: bool) -> None:
    stream = ChatChunks(id="chatcmpl-1", created=3, model="m", include_usage=include)
    natives = [chat_chunk("Hel"), chat_chunk(""), chat_chunk("lo"), chat_chunk("", **DONE)]
    chunks = dump([c for n in natives for c in stream.convert(n)] + stream.finish())
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks} == {
        ("chatcmpl-1", "chat.completion.chunk", 3, "m")
    }
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    finishes = [c["choices"][0]["finish_reason"] if c["choices"] else None for c in chunks]
    expected_deltas: list[Any] = [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert deltas[:4] == expected_deltas
    assert finishes[:4] == [None, None, None, "stop"]
    assert all("usage" not in c for c in chunks[:4])
    if include:
        assert chunks[4]["choices"] == []
        assert chunks[4]["usage"] == {
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "total_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
    assert len(chunks) == (5 if include else 4)


def test_chat_chunks_tool_calls() -> None:
    stream = ChatChunks(id="c", created=1, model="m", include_usage=False)
    calls = [
        {"function": {"name": "f", "arguments": {"x": 1}}},
        {"function": {"name": "g", "arguments": {}}},
    ]
    chunks = dump(stream.convert(chat_chunk("", tool_calls=calls, **DONE)))
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "tool_calls"]
    tool_calls = chunks[1]["choices"][0]["delta"]["tool_calls"]
    assert [(t["index"], t["type"], t["function"]) for t in tool_calls] == [
        (0, "function", {"name": "f", "arguments": '{"x": 1}'}),
        (1, "function", {"name": "g", "arguments": "{}"}),
    ]
    assert all(t["id"].startswith("call_") for t in tool_calls)


def test_chat_chunk_with_text_and_done_together() -> None:
    stream = ChatChunks(id="c", created=1, model="m", include_usage=False)
    chunks = dump(stream.convert(chat_chunk("bye", **{**DONE, "done_reason": "length"})))
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "bye"},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("include", [False, True])
def test_completion_chunks(include: bool) -> None:
    stream = CompletionChunks(id="cmpl-1", created=3, model="m", include_usage=include)
    natives = [
        GenerateResponse(model="m", created_at=NOW, response=" a"),
        GenerateResponse(
            model="m",
            created_at=NOW,
            response=" time",
            done=True,
            done_reason="stop",
            prompt_eval_count=2,
            eval_count=2,
        ),
    ]
    chunks = dump([c for n in natives for c in stream.convert(n)] + stream.finish())
    assert all(c["object"] == "text_completion" for c in chunks)
    texts = [(c["choices"][0]["text"], c["choices"][0]["finish_reason"]) for c in chunks[:3]]
    assert texts == [(" a", None), (" time", None), ("", "stop")]
    if include:
        assert chunks[3]["choices"] == [] and chunks[3]["usage"]["total_tokens"] == 4
    assert len(chunks) == (4 if include else 3)


def test_embedding_response_float_and_base64() -> None:
    native = EmbedResponse(model="m", embeddings=[[0.5, -1.25], [3.0, 0.0]], prompt_eval_count=4)
    floats = embedding_response(native, encoding_format="float").model_dump(mode="json")
    assert floats == {
        "data": [
            {"embedding": [0.5, -1.25], "index": 0, "object": "embedding"},
            {"embedding": [3.0, 0.0], "index": 1, "object": "embedding"},
        ],
        "model": "m",
        "object": "list",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    encoded = embedding_response(native, encoding_format="base64").data[1].embedding
    assert isinstance(encoded, str)
    raw = base64.b64decode(encoded)
    assert raw == b"\x00\x00\x40\x40" + b"\x00" * 4  # 3.0 as little-endian float32, then 0.0
    assert list(struct.unpack("<2f", raw)) == [3.0, 0.0]


TAGS = [
    {"model": "smollm2:135m", "modified_at": "2025-01-02T03:04:05+00:00"},
    {"model": "someone/tiny:q4", "modified_at": "2024-06-01T00:00:00.123456+00:00"},
]


def test_model_list() -> None:
    assert model_list(TAGS).model_dump() == {
        "object": "list",
        "data": [
            {"id": "smollm2:135m", "created": 1735787045, "object": "model", "owned_by": "library"},
            {
                "id": "someone/tiny:q4",
                "created": 1717200000,
                "object": "model",
                "owned_by": "someone",
            },
        ],
    }


@pytest.mark.parametrize(
    ("asked", "found"),
    [
        ("smollm2:135m", "smollm2:135m"),
        ("SmolLM2:135m", "smollm2:135m"),
        ("library/smollm2:135m", "smollm2:135m"),
        ("registry.ollama.ai/library/smollm2:135m", "smollm2:135m"),
        ("someone/tiny:q4", "someone/tiny:q4"),
    ],
)
def test_find_model(asked: str, found: str) -> None:
    assert find_model(TAGS, asked).id == found


@pytest.mark.parametrize("asked", ["smollm2", "smollm2:360m", "nope", "bad//name", ""])
def test_find_model_missing_is_model_not_found(asked: str) -> None:
    with pytest.raises(ModelNotFound) as info:
        find_model(TAGS, asked)
    assert info.value.status_code == 404 and info.value.name == asked
