"""The observer hooks' stream wrapper: first token, final counts, closing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from typing import Any

from corral.observe import NULL_OBSERVER, Observer, observed
from corral.runner.protocol import Delta


class Recorder(Observer):
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def generation(self, model: str, **kw: Any) -> None:
        self.calls.append({"model": model, **kw})


def test_null_observer_leaves_the_stream_alone() -> None:
    async def stream() -> AsyncGenerator[Delta, None]:
        yield Delta(content="x")

    original = stream()
    assert observed(original, NULL_OBSERVER, "m", 0) is original
    asyncio.run(original.aclose())


def test_reports_first_token_and_final_counts() -> None:
    async def stream() -> AsyncGenerator[Delta, None]:
        yield Delta(content="")  # an empty piece is not the first token
        yield Delta(thinking="hmm")
        yield Delta(content="answer")
        yield Delta(done=True, prompt_tokens=5, eval_tokens=2, eval_ms=40.0)

    recorder = Recorder()

    async def run() -> list[Delta]:
        started = time.perf_counter_ns()
        return [d async for d in observed(stream(), recorder, "m:1", started)]

    deltas = asyncio.run(run())
    assert [d.content or d.thinking for d in deltas[:3]] == ["", "hmm", "answer"]
    (call,) = recorder.calls
    assert call["model"] == "m:1"
    assert (call["prompt_tokens"], call["eval_tokens"], call["eval_seconds"]) == (5, 2, 0.04)
    assert call["ttft"] is not None and call["ttft"] > 0


def test_closing_the_wrapper_closes_the_engine_stream() -> None:
    closed: list[bool] = []

    async def stream() -> AsyncGenerator[Delta, None]:
        try:
            while True:
                yield Delta(content="x")
        finally:
            closed.append(True)

    recorder = Recorder()

    async def run() -> None:
        wrapper = observed(stream(), recorder, "m", time.perf_counter_ns())
        async with contextlib.aclosing(wrapper):
            await anext(wrapper)

    asyncio.run(run())
    assert closed == [True]
    assert recorder.calls == []  # never finished: nothing reported
