"""One timed request against scripted Ollama and OpenAI streams (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from corral.bench import BenchError, Sample, Target, detect_api, timed_request

Handler = Callable[[httpx.Request], httpx.Response]


def _run(handler: Handler, target: Target, max_tokens: int = 16) -> tuple[Sample, list[Any]]:
    bodies: list[Any] = []

    def record(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return handler(request)

    async def go() -> Sample:
        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
            return await timed_request(client, target, "m", "hello", max_tokens)

    return asyncio.run(go()), bodies


OLLAMA = Target("http://x", "ollama", "x")
OPENAI = Target("http://x", "openai", "x", api_key="k")


def _ndjson(*chunks: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, content=b"".join(json.dumps(c).encode() + b"\n" for c in chunks))


def _sse(*chunks: dict[str, Any]) -> httpx.Response:
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
    return httpx.Response(200, content="".join(lines).encode())


def test_ollama_stream_uses_the_servers_counts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/chat"
        return _ndjson(
            {"message": {"role": "assistant", "content": ""}, "done": False},
            {"message": {"content": "Hel"}, "done": False},
            {"message": {"content": "lo"}, "done": False},
            {"message": {"content": ""}, "done": True, "prompt_eval_count": 12, "eval_count": 3},
        )

    sample, bodies = _run(handler, OLLAMA, max_tokens=16)
    assert sample.ok, sample.error
    assert (sample.prompt_tokens, sample.gen_tokens, sample.chunks) == (12, 3, 2)
    assert sample.counted_by == "server"
    assert sample.ttft is not None and 0 < sample.ttft <= sample.duration
    assert bodies[0]["stream"] is True and bodies[0]["options"]["num_predict"] == 16
    assert bodies[0]["messages"] == [{"role": "user", "content": "hello"}]


def test_openai_stream_asks_for_usage_and_sends_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["Authorization"] == "Bearer k"
        return _sse(
            {"choices": [{"delta": {"role": "assistant"}}]},
            {"choices": [{"delta": {"content": "a"}}]},
            {"choices": [{"delta": {"content": "b"}}]},
            {"choices": [{"delta": {"content": "c"}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
        )

    sample, bodies = _run(handler, OPENAI, max_tokens=8)
    assert sample.ok, sample.error
    assert (sample.prompt_tokens, sample.gen_tokens, sample.chunks) == (9, 4, 3)
    assert bodies[0]["stream_options"] == {"include_usage": True}
    assert bodies[0]["max_tokens"] == 8


def test_openai_without_usage_counts_chunks() -> None:
    sample, _ = _run(lambda r: _sse(*({"choices": [{"delta": {"content": w}}]} for w in "xyz")),
                     OPENAI)  # fmt: skip
    assert sample.ok
    assert (sample.gen_tokens, sample.counted_by, sample.prompt_tokens) == (3, "chunks", None)
    assert sample.prompt_rate is None


@pytest.mark.parametrize(
    ("target", "response", "error"),
    [
        (OLLAMA, httpx.Response(404, json={"error": 'model "m" not found'}),
         'HTTP 404: model "m" not found'),
        (OPENAI, httpx.Response(503, json={"error": {"message": "busy", "type": "x"}}),
         "HTTP 503: busy"),
        (OLLAMA, _ndjson({"message": {"content": "a"}, "done": False}, {"error": "engine died"}),
         "engine died"),
        (OPENAI, _sse({"error": {"message": "overloaded"}}), "overloaded"),
        (OLLAMA, _ndjson({"message": {"content": ""}, "done": True}),
         "without any content"),
        (OLLAMA, httpx.Response(200, content=b"not json\n"), "invalid stream data"),
    ],
)  # fmt: skip
def test_failures_are_recorded_not_raised(
    target: Target, response: httpx.Response, error: str
) -> None:
    sample, _ = _run(lambda r: response, target)
    assert not sample.ok
    assert sample.error is not None and error in sample.error


def test_a_connection_error_is_a_failed_sample() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sample, _ = _run(refuse, OLLAMA)
    assert sample.error == "ConnectError: refused"


def _detect(handler: Handler) -> str:
    async def go() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await detect_api(client, "http://x", {})

    return asyncio.run(go())


def test_detect_api() -> None:
    def ollama(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"version": "0.1.0"})

    def openai(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": []})
        return httpx.Response(404, text="not found")

    assert _detect(ollama) == "ollama"
    assert _detect(openai) == "openai"
    with pytest.raises(BenchError, match="use --api"):
        _detect(lambda r: httpx.Response(404))
