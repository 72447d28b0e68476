"""EngineClient against canned llama-server answers from a fake HTTP server: no engine needed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from corral.errors import (
    BadRequest,
    ContextLengthExceeded,
    EngineCrashed,
    EngineError,
    UnsupportedFeature,
)
from corral.runner import client as client_mod
from corral.runner.client import EngineClient
from corral.runner.process import free_port
from corral.runner.protocol import Delta, GenerationParams
from tests.runner.helpers import FakeEngine, Hangup, Reply, Request, Responder, eventually

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
    """The fake engine's responder: answers with ``respond`` and keeps the request."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Reply | Awaitable[Reply]:
        self.requests.append(request)
        return self.respond(request)

    @property
    def body(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.requests[-1].content)
        return result


ClientFor = Callable[..., tuple[EngineClient, Recorder]]


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    fake = await FakeEngine().start()
    yield fake
    await fake.close()


@pytest.fixture
async def client_for(engine: FakeEngine) -> AsyncIterator[ClientFor]:
    """``client_for(respond, **kw)``: an EngineClient to the fake engine, which answers
    with ``respond`` from now on, and the recorder of what the engine received."""
    clients: list[EngineClient] = []

    def make(respond: Responder, **kw: Any) -> tuple[EngineClient, Recorder]:
        recorder = Recorder(respond)
        engine.respond = recorder
        clients.append(EngineClient(engine.url, "smollm2:135m", **kw))
        return clients[-1], recorder

    yield make
    for client in clients:
        await client.aclose()


async def pieces(body: bytes, size: int | None = None) -> AsyncIterator[bytes]:
    """``body`` one SSE event per chunk (as llama-server sends it), or ``size`` bytes each."""
    if size is None:
        for event in re.split(b"(?<=\n\n)", body):
            if event:
                yield event
    else:
        for start in range(0, len(body), size):
            yield body[start : start + size]


def stream_response(body: bytes, status: int = 200, size: int | None = None) -> Responder:
    return lambda _: Reply(
        status, headers={"Content-Type": "text/event-stream"}, stream=pieces(body, size)
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


async def test_chat_streams_content_then_final_delta(client_for: ClientFor) -> None:
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


async def test_chat_request_body(client_for: ClientFor) -> None:
    client, rec = client_for(stream_response(CHAT_STREAM))
    messages = [{"role": "user", "content": "hi"}]
    params = GenerationParams(sampling={"temperature": 0.2, "top_k": 5, "n_predict": 9, "seed": 1})
    await collect(client.chat(messages, params))
    request = rec.requests[-1]
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    body = rec.body
    assert body["messages"] == messages
    assert body["stream"] is True
    assert body["cache_prompt"] is True
    assert (body["temperature"], body["top_k"], body["n_predict"], body["seed"]) == (0.2, 5, 9, 1)
    assert "tools" not in body and "response_format" not in body
    assert params.sampling == {"temperature": 0.2, "top_k": 5, "n_predict": 9, "seed": 1}


async def test_chat_formats_and_tools(client_for: ClientFor) -> None:
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


async def test_chat_thinking_and_length(client_for: ClientFor) -> None:
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


async def test_chat_tool_call_fragments_are_joined(client_for: ClientFor) -> None:
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


async def test_tool_call_arguments_that_are_not_an_object_are_an_error(
    client_for: ClientFor,
) -> None:
    body = sse(
        chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "[1, 2"}}]}),
        chunk({}, "tool_calls", timings=TIMINGS),
    )
    client, _ = client_for(stream_response(body))
    with pytest.raises(EngineError, match="'f' with arguments that are not a JSON object: \\[1, 2"):
        await collect(client.chat([], GenerationParams()))


async def test_chat_usage_chunk_after_finish(client_for: ClientFor) -> None:
    """With stream_options.include_usage the timings come in a last chunk without choices."""
    body = sse(
        chunk({"content": "x"}),
        chunk({}, "stop"),
        {"choices": [], "usage": {"prompt_tokens": 20}, "timings": TIMINGS},
    )
    client, _ = client_for(stream_response(body))
    final = (await collect(client.chat([], GenerationParams())))[-1]
    assert final.done and final.prompt_tokens == 12 and final.eval_tokens == 7


async def test_complete_request_and_stream(client_for: ClientFor) -> None:
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
    assert deltas[-1].prompt_tokens == 12 and deltas[-1].cached_tokens == 3  # prompt_n, cache_n
    assert rec.requests[-1].path == "/completion"
    assert rec.body["prompt"] == "The capital of France is"
    assert rec.body["stream"] is True and rec.body["cache_prompt"] is True
    assert rec.body["n_predict"] == 2
    assert rec.body["json_schema"] == schema
    await collect(client.complete("x", GenerationParams(json_mode=True)))
    assert rec.body["json_schema"] == {"type": "object"}


@pytest.mark.parametrize(
    ("stop_type", "reason"), [("eos", "stop"), ("word", "stop"), ("limit", "length")]
)
async def test_complete_stop_types(client_for: ClientFor, stop_type: str, reason: str) -> None:
    body = sse(
        {"content": "", "stop": True, "stop_type": stop_type, "timings": TIMINGS}, done=False
    )
    client, _ = client_for(stream_response(body))
    (final,) = await collect(client.complete("x", GenerationParams()))
    assert final.done_reason == reason


def json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def error_response(status: int, message: str, type_: str) -> Responder:
    payload = {"error": {"code": status, "message": message, "type": type_}}
    return lambda _: json_reply(status, payload)


async def test_http_400_is_bad_request_with_engine_message(client_for: ClientFor) -> None:
    message = "request (1031 tokens) exceeds the available context size (512 tokens)"
    client, _ = client_for(error_response(400, message, "exceed_context_size_error"))
    with pytest.raises(BadRequest) as info:
        await collect(client.chat([], GenerationParams()))
    assert info.value.message == message
    assert type(info.value) is BadRequest


async def test_prompt_over_the_context_says_what_to_do(client_for: ClientFor) -> None:
    """llama-server's own "try increasing it" does not say what; ours names num_ctx."""
    payload = {
        "error": {
            "code": 400,
            "message": "request (10989 tokens) exceeds the available context size "
            "(4096 tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 10989,
            "n_ctx": 4096,
        }
    }
    client, _ = client_for(lambda _: json_reply(400, payload))
    with pytest.raises(ContextLengthExceeded) as info:
        await collect(client.complete("x", GenerationParams()))
    assert (info.value.prompt_tokens, info.value.num_ctx) == (10989, 4096)
    assert info.value.status_code == 400
    assert "(10989 tokens)" in info.value.message and "(4096 tokens)" in info.value.message
    assert "shorten it or raise num_ctx" in info.value.message


async def test_http_501_is_unsupported(client_for: ClientFor) -> None:
    client, _ = client_for(error_response(501, "no embeddings", "not_supported_error"))
    with pytest.raises(UnsupportedFeature, match="no embeddings"):
        await collect(client.complete("x", GenerationParams()))


async def test_http_500_is_engine_error(client_for: ClientFor) -> None:
    client, _ = client_for(error_response(500, "boom", "server_error"))
    with pytest.raises(EngineError, match=r"smollm2:135m.*boom") as info:
        await collect(client.complete("x", GenerationParams()))
    assert not isinstance(info.value, BadRequest)


async def test_http_error_without_json(client_for: ClientFor) -> None:
    client, _ = client_for(lambda _: Reply(404, b"File Not Found"))
    with pytest.raises(BadRequest, match="File Not Found"):
        await collect(client.complete("x", GenerationParams()))


async def test_error_event_mid_stream(client_for: ClientFor) -> None:
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


async def test_stream_that_ends_early_is_a_crash(client_for: ClientFor) -> None:
    client, _ = client_for(stream_response(sse(chunk({"content": "a"}), done=False)))
    with pytest.raises(EngineCrashed, match="smollm2:135m stopped unexpectedly"):
        await collect(client.chat([], GenerationParams()))
    client, _ = client_for(stream_response(sse({"content": "a", "stop": False}, done=False)))
    with pytest.raises(EngineCrashed):
        await collect(client.complete("x", GenerationParams()))


async def test_connection_refused_is_a_crash() -> None:
    client = EngineClient(f"http://127.0.0.1:{free_port()}", "smollm2:135m")  # nobody listens
    try:
        with pytest.raises(EngineCrashed, match="engine for smollm2:135m stopped unexpectedly"):
            await collect(client.chat([], GenerationParams()))
    finally:
        await client.aclose()


class SlowStream:
    """Endless SSE chunks; records whether the client closed the connection.

    With ``fail_after`` the engine drops the connection after that many chunks: a FIN,
    or with ``reset`` an RST.
    """

    def __init__(
        self, fail_after: int | None = None, *, completion: bool = False, reset: bool = False
    ) -> None:
        self.completion = completion
        self.closed = False
        self.sent = 0
        self.fail_after = fail_after
        self.reset = reset

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise Hangup(reset=self.reset)
            self.sent += 1
            text = f"t{self.sent} "
            event = (
                {"content": text, "stop": False} if self.completion else chunk({"content": text})
            )
            yield sse(event, done=False)
            await asyncio.sleep(0.002)

    async def aclose(self) -> None:
        self.closed = True


def slow(stream: SlowStream) -> Responder:
    return lambda _: Reply(200, headers={"Content-Type": "text/event-stream"}, stream=stream)


async def test_aclose_closes_the_engine_response(client_for: ClientFor) -> None:
    stream = SlowStream()
    client, _ = client_for(slow(stream))
    gen = client.chat([], GenerationParams())
    got = [await anext(gen) for _ in range(3)]
    assert [d.content for d in got] == ["t1 ", "t2 ", "t3 "]
    assert not stream.closed
    await gen.aclose()
    assert await eventually(lambda: stream.closed, 1)


async def test_breaking_out_with_aclosing_closes_the_response(client_for: ClientFor) -> None:
    stream = SlowStream(completion=True)
    client, _ = client_for(slow(stream))
    async with contextlib.aclosing(client.complete("x", GenerationParams())) as gen:
        async for _ in gen:
            break
    assert await eventually(lambda: stream.closed, 1)


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
async def test_reset_mid_stream_is_a_crash(client_for: ClientFor, reset: bool) -> None:
    stream = SlowStream(fail_after=2, reset=reset)
    client, _ = client_for(slow(stream))
    with pytest.raises(
        EngineCrashed, match=r"smollm2:135m stopped unexpectedly: .*(payload|reset)"
    ):
        await collect(client.chat([], GenerationParams()))
    if not reset:  # after a FIN the engine still sees us close our side
        assert await eventually(lambda: stream.closed, 1)


async def test_closed_client_says_stopped(client_for: ClientFor) -> None:
    client, _ = client_for(stream_response(CHAT_STREAM))
    await client.aclose()
    with pytest.raises(EngineCrashed, match="was stopped"):
        await collect(client.chat([], GenerationParams()))


async def test_aclose_ends_a_running_stream(client_for: ClientFor) -> None:
    """What Engine.stop() relies on: a consumer waiting for the next token is woken up."""
    stream = SlowStream()
    client, _ = client_for(slow(stream))
    gen = client.chat([], GenerationParams())
    await anext(gen)

    async def consume() -> None:
        async for _ in gen:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await client.aclose()
    with pytest.raises(EngineCrashed, match="engine for smollm2:135m was stopped"):
        await asyncio.wait_for(task, 2)
    assert await eventually(lambda: stream.closed, 1)


async def test_sse_split_anywhere_with_comments_and_crlf(client_for: ClientFor) -> None:
    body = (
        b": ping\r\n\r\n"
        + sse(chunk({"content": "Hel"}), done=False).replace(b"\n", b"\r\n")
        + sse(chunk({"content": "lo"}), done=False)
        + b": ping\n\n"
        + sse(chunk({}, "stop", timings=TIMINGS))
    )
    for size in (1, 7, 4096):
        client, _ = client_for(stream_response(body, size=size))
        deltas = await collect(client.chat([], GenerationParams()))
        assert [d.content for d in deltas[:-1]] == ["Hel", "lo"], size
        assert deltas[-1].done and deltas[-1].eval_tokens == 7


async def test_an_event_bigger_than_any_read(client_for: ClientFor) -> None:
    long_piece = "x" * 3_000_000  # also more than aiohttp's own readline() would take
    body = sse(chunk({"content": "a"}), chunk({"content": long_piece}), chunk({}, "stop"))
    for size in (None, 65536):
        client, _ = client_for(stream_response(body, size=size))
        deltas = await collect(client.chat([], GenerationParams()))
        assert [d.content for d in deltas[:-1]] == ["a", long_piece]


async def test_last_line_without_a_newline(client_for: ClientFor) -> None:
    body = sse({"content": "a", "stop": False}, done=False) + b'data: {"content": "", "stop": true}'
    client, _ = client_for(stream_response(body))
    deltas = await collect(client.complete("x", GenerationParams()))
    assert [d.content for d in deltas] == ["a", ""] and deltas[-1].done


async def test_connection_is_reused_after_a_whole_answer(
    client_for: ClientFor, engine: FakeEngine
) -> None:
    client, rec = client_for(stream_response(CHAT_STREAM))
    for _ in range(3):
        assert (await collect(client.chat([], GenerationParams())))[-1].done
    assert (len(rec.requests), engine.connections) == (3, 1)


def hang_up_on(numbers: set[int], then: Responder) -> Responder:
    """Drop the connection without an answer on those requests (1-based), else ``then``."""
    seen = [0]

    def respond(request: Request) -> Reply | Awaitable[Reply]:
        seen[0] += 1
        if seen[0] in numbers:
            raise Hangup()
        return then(request)

    return respond


async def test_dropped_keep_alive_connection_is_retried_once(
    client_for: ClientFor, engine: FakeEngine
) -> None:
    """The engine closed the idle connection just as the next request went out."""
    client, rec = client_for(hang_up_on({2}, stream_response(CHAT_STREAM)))
    await collect(client.chat([], GenerationParams()))
    deltas = await collect(client.chat([], GenerationParams()))
    assert deltas[-1].done
    assert (len(rec.requests), engine.connections) == (3, 2)


async def test_no_second_retry_and_none_when_the_engine_is_dead(client_for: ClientFor) -> None:
    client, rec = client_for(hang_up_on({1, 2}, stream_response(CHAT_STREAM)))
    with pytest.raises(EngineCrashed, match="smollm2:135m stopped unexpectedly"):
        await collect(client.chat([], GenerationParams()))
    assert len(rec.requests) == 2
    client, rec = client_for(hang_up_on({1}, stream_response(CHAT_STREAM)), is_alive=lambda: False)
    with pytest.raises(EngineCrashed, match="smollm2:135m stopped unexpectedly"):
        await collect(client.chat([], GenerationParams()))
    assert len(rec.requests) == 1


async def test_json_endpoints(client_for: ClientFor) -> None:
    answers = {
        "/v1/embeddings": {
            "data": [{"index": 1, "embedding": [0.5]}, {"index": 0, "embedding": [0.25]}],
            "usage": {"prompt_tokens": 4},
        },
        "/tokenize": {"tokens": [1, 2, 3]},
        "/detokenize": {"content": "héllo"},
        "/apply-template": {"prompt": "<|user|>hi"},
    }
    client, rec = client_for(lambda request: json_reply(200, answers[request.path]))
    embeddings = await client.embed(["a", [1, 2]])
    assert (embeddings.vectors, embeddings.prompt_tokens) == ([[0.25], [0.5]], 4)
    assert rec.body == {"input": ["a", [1, 2]]}
    assert rec.requests[-1].headers["content-type"] == "application/json"
    assert await client.tokenize("héllo") == [1, 2, 3]
    assert rec.requests[-1].content == '{"content":"héllo","add_special":false}'.encode()
    assert await client.detokenize([1, 2, 3]) == "héllo"
    assert await client.apply_template([{"role": "user", "content": "hi"}]) == "<|user|>hi"
    assert [r.method for r in rec.requests] == ["POST"] * 4
    assert all(r.headers.get("connection") != "close" for r in rec.requests)  # pooled


async def test_streams_ask_for_a_fresh_connection(client_for: ClientFor) -> None:
    """llama-server closes the socket after a streamed answer: don't pool it."""
    client, rec = client_for(stream_response(CHAT_STREAM))
    await collect(client.chat([], GenerationParams()))
    assert rec.requests[-1].headers["connection"] == "close"


async def test_json_endpoint_errors(client_for: ClientFor) -> None:
    client, _ = client_for(error_response(501, "no embeddings", "not_supported_error"))
    with pytest.raises(UnsupportedFeature, match="no embeddings"):
        await client.embed(["a"])
    cut = Reply(200, b'{"tokens": [1, 2', {"Content-Length": "30"}, hang_up=True)
    client, _ = client_for(lambda _: cut)
    with pytest.raises(EngineCrashed, match="smollm2:135m stopped unexpectedly"):
        await client.tokenize("cut off")


async def test_healthy(client_for: ClientFor, monkeypatch: pytest.MonkeyPatch) -> None:
    client, rec = client_for(lambda _: json_reply(200, {"status": "ok"}))
    assert await client.healthy() is True
    assert (rec.requests[-1].method, rec.requests[-1].path) == ("GET", "/health")
    client, _ = client_for(lambda _: json_reply(503, {"error": {"message": "Loading model"}}))
    assert await client.healthy() is False

    async def never(_: Request) -> Reply:
        await asyncio.sleep(30)
        return Reply()

    monkeypatch.setattr(client_mod, "_HEALTH_TIMEOUT_S", 0.2)
    client, _ = client_for(never)
    started = time.monotonic()
    assert await client.healthy() is False
    assert time.monotonic() - started < 2
    await client.aclose()
    assert await client.healthy() is False
    refused = EngineClient(f"http://127.0.0.1:{free_port()}", "smollm2:135m")
    assert await refused.healthy() is False
    await refused.aclose()


async def test_proxy_settings_are_ignored(
    client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{free_port()}")  # nobody listens there
    monkeypatch.setenv("NO_PROXY", "")
    client, rec = client_for(stream_response(CHAT_STREAM))
    assert (await collect(client.chat([], GenerationParams())))[-1].done
    assert rec.requests[-1].path == "/v1/chat/completions"
