"""EngineClient against canned llama-server answers (httpx.MockTransport): no engine needed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from corral.errors import BadRequest, EngineCrashed, EngineError, UnsupportedFeature
from corral.runner.client import EngineClient
from corral.runner.protocol import Delta, GenerationParams

TIMINGS = {
    "cache_n": 3,
    "prompt_n": 12,
    "prompt_ms": 34.5,
    "predicted_n": 7,
    "predicted_ms": 56.25,
}


def sse(*events: Any, done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(e)}\n\n" for e in events]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        "object": "chat.completion.chunk",
        **extra,
    }


class Recorder:
    """A MockTransport handler that answers one canned response and keeps the request."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    @property
    def body(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.requests[-1].content)
        return result


def client_for(respond: Callable[[httpx.Request], httpx.Response]) -> tuple[EngineClient, Recorder]:
    recorder = Recorder(respond)
    client = EngineClient("http://engine", "smollm2:135m", transport=httpx.MockTransport(recorder))
    return client, recorder


def stream_response(body: bytes, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(
        status, content=body, headers={"content-type": "text/event-stream"}
    )


async def collect(stream: AsyncIterator[Delta]) -> list[Delta]:
    return [d async for d in stream]


CHAT_STREAM = sse(
    chunk({"role": "assistant", "content": None}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk({"content": "!"}),
    chunk({}, "stop", timings=TIMINGS),
)


async def test_chat_streams_content_then_final_delta() -> None:
    client, _ = client_for(stream_response(CHAT_STREAM))
    deltas = await collect(client.chat([{"role": "user", "content": "hi"}], GenerationParams()))
    assert [d.content for d in deltas[:-1]] == ["Hel", "lo", "!"]
    assert not any(d.done for d in deltas[:-1])
    final = deltas[-1]
    assert final.done and final.done_reason == "stop"
    assert final.content == ""
    assert (final.prompt_tokens, final.prompt_ms) == (12, 34.5)
    assert (final.eval_tokens, final.eval_ms) == (7, 56.25)
    assert final.tool_calls == []


async def test_chat_request_body() -> None:
    client, rec = client_for(stream_response(CHAT_STREAM))
    messages = [{"role": "user", "content": "hi"}]
    params = GenerationParams(sampling={"temperature": 0.2, "top_k": 5, "n_predict": 9, "seed": 1})
    await collect(client.chat(messages, params))
    request = rec.requests[-1]
    assert request.method == "POST"
    assert request.url.path == "/v1/chat/completions"
    body = rec.body
    assert body["messages"] == messages
    assert body["stream"] is True
    assert body["cache_prompt"] is True
    assert (body["temperature"], body["top_k"], body["n_predict"], body["seed"]) == (0.2, 5, 9, 1)
    assert "tools" not in body and "response_format" not in body
    assert params.sampling == {"temperature": 0.2, "top_k": 5, "n_predict": 9, "seed": 1}


async def test_chat_formats_and_tools() -> None:
    client, rec = client_for(stream_response(CHAT_STREAM))
    msgs = [{"role": "user", "content": "hi"}]
    await collect(client.chat(msgs, GenerationParams(json_mode=True)))
    assert rec.body["response_format"] == {"type": "json_object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    await collect(client.chat(msgs, GenerationParams(json_schema=schema, json_mode=True)))
    assert rec.body["response_format"] == {"type": "json_schema", "json_schema": {"schema": schema}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    await collect(client.chat(msgs, GenerationParams(), tools))
    assert rec.body["tools"] == tools


async def test_chat_thinking_and_length() -> None:
    body = sse(
        chunk({"role": "assistant", "content": None}),
        chunk({"reasoning_content": "Let me "}),
        chunk({"reasoning_content": "think."}),
        chunk({"content": "Answer"}),
        chunk({}, "length", timings=TIMINGS),
    )
    client, _ = client_for(stream_response(body))
    deltas = await collect(client.chat([], GenerationParams()))
    assert [(d.thinking, d.content) for d in deltas[:-1]] == [
        ("Let me ", ""),
        ("think.", ""),
        ("", "Answer"),
    ]
    assert deltas[-1].done_reason == "length"


async def test_chat_tool_call_fragments_are_joined() -> None:
    body = sse(
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather"},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "now"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls", timings=TIMINGS),
    )
    client, _ = client_for(stream_response(body))
    deltas = await collect(client.chat([], GenerationParams()))
    assert len(deltas) == 1  # no text, just the final delta
    final = deltas[0]
    assert final.done and final.done_reason == "stop"
    assert final.tool_calls == [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"name": "now", "arguments": {}}},
    ]


async def test_tool_call_arguments_that_are_not_an_object_are_an_error() -> None:
    body = sse(
        chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "[1, 2"}}]}),
        chunk({}, "tool_calls", timings=TIMINGS),
    )
    client, _ = client_for(stream_response(body))
    with pytest.raises(EngineError, match="'f' with arguments that are not a JSON object: \\[1, 2"):
        await collect(client.chat([], GenerationParams()))


async def test_chat_usage_chunk_after_finish() -> None:
    """With stream_options.include_usage the timings come in a last chunk without choices."""
    body = sse(
        chunk({"content": "x"}),
        chunk({}, "stop"),
        {"choices": [], "usage": {"prompt_tokens": 20}, "timings": TIMINGS},
    )
    client, _ = client_for(stream_response(body))
    final = (await collect(client.chat([], GenerationParams())))[-1]
    assert final.done and final.prompt_tokens == 12 and final.eval_tokens == 7


async def test_complete_request_and_stream() -> None:
    body = sse(
        {"content": " Paris", "stop": False},
        {"content": ".", "stop": False},
        {"content": "", "stop": True, "stop_type": "limit", "timings": TIMINGS},
        done=False,
    )
    client, rec = client_for(stream_response(body))
    schema = {"type": "object"}
    params = GenerationParams(sampling={"n_predict": 2}, json_schema=schema)
    deltas = await collect(client.complete("The capital of France is", params))
    assert [d.content for d in deltas[:-1]] == [" Paris", "."]
    assert deltas[-1].done and deltas[-1].done_reason == "length"
    assert deltas[-1].prompt_tokens == 12
    assert rec.requests[-1].url.path == "/completion"
    assert rec.body["prompt"] == "The capital of France is"
    assert rec.body["stream"] is True and rec.body["cache_prompt"] is True
    assert rec.body["n_predict"] == 2
    assert rec.body["json_schema"] == schema
    await collect(client.complete("x", GenerationParams(json_mode=True)))
    assert rec.body["json_schema"] == {"type": "object"}


@pytest.mark.parametrize(
    ("stop_type", "reason"), [("eos", "stop"), ("word", "stop"), ("limit", "length")]
)
async def test_complete_stop_types(stop_type: str, reason: str) -> None:
    body = sse(
        {"content": "", "stop": True, "stop_type": stop_type, "timings": TIMINGS}, done=False
    )
    client, _ = client_for(stream_response(body))
    (final,) = await collect(client.complete("x", GenerationParams()))
    assert final.done_reason == reason


def error_response(
    status: int, message: str, type_: str
) -> Callable[[httpx.Request], httpx.Response]:
    payload = {"error": {"code": status, "message": message, "type": type_}}
    return lambda _: httpx.Response(status, json=payload)


async def test_http_400_is_bad_request_with_engine_message() -> None:
    message = "request (1031 tokens) exceeds the available context size (512 tokens)"
    client, _ = client_for(error_response(400, message, "exceed_context_size_error"))
    with pytest.raises(BadRequest) as info:
        await collect(client.chat([], GenerationParams()))
    assert info.value.message == message
    assert type(info.value) is BadRequest


async def test_http_501_is_unsupported() -> None:
    client, _ = client_for(error_response(501, "no embeddings", "not_supported_error"))
    with pytest.raises(UnsupportedFeature, match="no embeddings"):
        await collect(client.complete("x", GenerationParams()))


async def test_http_500_is_engine_error() -> None:
    client, _ = client_for(error_response(500, "boom", "server_error"))
    with pytest.raises(EngineError, match=r"smollm2:135m.*boom") as info:
        await collect(client.complete("x", GenerationParams()))
    assert not isinstance(info.value, BadRequest)


async def test_http_error_without_json() -> None:
    client, _ = client_for(lambda _: httpx.Response(404, text="File Not Found"))
    with pytest.raises(BadRequest, match="File Not Found"):
        await collect(client.complete("x", GenerationParams()))


async def test_error_event_mid_stream() -> None:
    body = sse(
        chunk({"content": "a"}),
        {"error": {"code": 500, "message": "context shift is disabled", "type": "server_error"}},
        done=False,
    )
    client, _ = client_for(stream_response(body))
    got: list[str] = []
    with pytest.raises(EngineError, match="context shift is disabled"):
        async for d in client.chat([], GenerationParams()):
            got.append(d.content)
    assert got == ["a"]


async def test_stream_that_ends_early_is_a_crash() -> None:
    client, _ = client_for(stream_response(sse(chunk({"content": "a"}), done=False)))
    with pytest.raises(EngineCrashed, match="smollm2:135m stopped unexpectedly"):
        await collect(client.chat([], GenerationParams()))
    client, _ = client_for(stream_response(sse({"content": "a", "stop": False}, done=False)))
    with pytest.raises(EngineCrashed):
        await collect(client.complete("x", GenerationParams()))


async def test_connection_refused_is_a_crash() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client, _ = client_for(refuse)
    with pytest.raises(EngineCrashed, match="engine for smollm2:135m stopped unexpectedly"):
        await collect(client.chat([], GenerationParams()))


class SlowStream(httpx.AsyncByteStream):
    """Endless SSE chunks; records whether the response was closed."""

    def __init__(self, fail_after: int | None = None, *, completion: bool = False) -> None:
        self.completion = completion
        self.closed = False
        self.sent = 0
        self.fail_after = fail_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise httpx.RemoteProtocolError("peer closed connection")
            self.sent += 1
            text = f"t{self.sent} "
            event = (
                {"content": text, "stop": False} if self.completion else chunk({"content": text})
            )
            yield sse(event, done=False)
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        self.closed = True


async def test_aclose_closes_the_engine_response() -> None:
    stream = SlowStream()
    client, _ = client_for(lambda _: httpx.Response(200, stream=stream))
    gen = client.chat([], GenerationParams())
    got = [await anext(gen) for _ in range(3)]
    assert [d.content for d in got] == ["t1 ", "t2 ", "t3 "]
    assert not stream.closed
    await gen.aclose()
    assert stream.closed


async def test_breaking_out_with_aclosing_closes_the_response() -> None:
    stream = SlowStream(completion=True)
    client, _ = client_for(lambda _: httpx.Response(200, stream=stream))
    async with contextlib.aclosing(client.complete("x", GenerationParams())) as gen:
        async for _ in gen:
            break
    assert stream.closed


async def test_reset_mid_stream_is_a_crash() -> None:
    stream = SlowStream(fail_after=2)
    client, _ = client_for(lambda _: httpx.Response(200, stream=stream))
    with pytest.raises(EngineCrashed, match="peer closed connection"):
        await collect(client.chat([], GenerationParams()))
    assert stream.closed


async def test_closed_client_says_stopped() -> None:
    client, _ = client_for(stream_response(CHAT_STREAM))
    await client.aclose()
    with pytest.raises(EngineCrashed, match="was stopped"):
        await collect(client.chat([], GenerationParams()))
