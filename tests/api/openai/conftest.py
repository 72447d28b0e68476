"""The whole app (the /v1 surface included) on the fake engine, and scripted engines."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.runner.protocol import Delta, Engine, LoadSpec
from tests.fakes import FakeEngine, FakeFactory


@pytest.fixture
def v1(seeded_models: Path, factory: FakeFactory, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / "home", models=seeded_models)
    app = create_app(settings, engine_factory=factory)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def tools_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """SmolLM2's template has no tools, so the service refuses them; pretend it has."""
    monkeypatch.setattr(
        "corral.core.service.capabilities", lambda info, model: ["completion", "tools"]
    )


@dataclass
class ScriptedEngine(FakeEngine):
    """The fake engine, plus what the real runner can add: tool calls on the last delta
    (parsed, as the runner hands them on) and per-token logprobs in Ollama's shape."""

    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: bool = False

    async def _stream(self, stop: Sequence[str] = ()) -> AsyncGenerator[Delta, None]:
        async for delta in super()._stream(stop):
            if delta.done:
                delta.tool_calls = list(self.tool_calls)
            elif self.logprobs:
                top = [{"token": delta.content, "logprob": -0.5}, {"token": "?", "logprob": -3.0}]
                delta.logprobs = [{"token": delta.content, "logprob": -0.5, "top_logprobs": top}]
            yield delta


@dataclass
class ScriptedFactory(FakeFactory):
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: bool = False

    async def __call__(self, spec: LoadSpec) -> Engine:
        engine = ScriptedEngine(
            spec=spec, tool_calls=self.tool_calls, logprobs=self.logprobs, **self.engine_kwargs
        )
        self.engines.append(engine)
        return engine


def sse(text: str) -> list[Any]:
    """The events of an SSE body: parsed JSON, or the string "[DONE]"."""
    events: list[Any] = []
    for block in text.split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        events.append(data if data == "[DONE]" else json.loads(data))
    return events
