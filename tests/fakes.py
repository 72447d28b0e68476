"""A scripted engine that obeys the runner protocol, for tests of everything above the runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.errors import ContextLengthExceeded, EngineCrashed, EngineStartError
from corral.runner.protocol import Delta, Embeddings, Engine, GenerationParams, LoadSpec


@dataclass
class Call:
    kind: str
    messages: list[dict[str, Any]] | None
    prompt: str | None
    params: GenerationParams
    tools: list[dict[str, Any]] | None


@dataclass
class FakeEngine:
    spec: LoadSpec
    words: list[str] = field(default_factory=lambda: ["Hello", " there", "!"])
    delay: float = 0.0
    crash_after: int | None = None
    alive: bool = True
    answers: bool = True  # False: the process is up but hung
    calls: list[Call] = field(default_factory=list)
    stopped: bool = False
    in_flight: int = 0
    max_in_flight: int = 0
    closed_streams: int = 0
    prompt_tokens: int = 7  # the final delta's evaluated prompt tokens ...
    cached_tokens: int = 0  # ... and those the "prompt cache" supplied
    tokenized: list[str] = field(default_factory=list)  # every tokenize() call's text
    # refuse, as llama-server does, a prompt of num_ctx tokens or more (one per character of
    # the prompt, or of apply_template's rendering for chat)
    enforce_context: bool = False

    async def _refuse(self, tokens: int) -> AsyncGenerator[Delta, None]:
        """As llama-server answers a prompt that does not fit: a 400 before any token."""
        raise ContextLengthExceeded(tokens, self.spec.num_ctx)
        yield Delta()  # pragma: no cover - makes this a generator

    def _checked(self, prompt: str, params: GenerationParams) -> AsyncGenerator[Delta, None]:
        if self.enforce_context and len(prompt) >= self.spec.num_ctx:
            return self._refuse(len(prompt))
        return self._stream(params.sampling.get("stop") or [])

    async def _stream(self, stop: Sequence[str] = ()) -> AsyncGenerator[Delta, None]:
        """The words in turn; as llama-server, a stop string within a word ends the answer
        before it (a match across two words is not looked for)."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        stop_word: str | None = None
        try:
            for i, word in enumerate(self.words):
                if self.crash_after is not None and i >= self.crash_after:
                    self.alive = False
                    raise EngineCrashed(f"engine for {self.spec.label} stopped unexpectedly")
                if self.delay:
                    await asyncio.sleep(self.delay)
                stop_word = next((s for s in stop if s in word), None)
                if stop_word is not None:
                    if before := word[: word.index(stop_word)]:
                        yield Delta(content=before)
                    break
                yield Delta(content=word)
            yield Delta(
                done=True,
                done_reason="stop",
                stop_word=stop_word,
                prompt_tokens=self.prompt_tokens,
                cached_tokens=self.cached_tokens,
                prompt_ms=1.5,
                eval_tokens=len(self.words),
                eval_ms=3.0,
            )
        finally:
            self.in_flight -= 1
            self.closed_streams += 1

    def chat(
        self,
        messages: list[dict[str, Any]],
        params: GenerationParams,
        tools: list[dict[str, Any]] | None = None,
    ) -> AsyncGenerator[Delta, None]:
        self.calls.append(Call("chat", messages, None, params, tools))
        return self._checked(_render(messages), params)

    def complete(self, prompt: str, params: GenerationParams) -> AsyncGenerator[Delta, None]:
        self.calls.append(Call("complete", None, prompt, params, None))
        return self._checked(prompt, params)

    def infill(
        self, prefix: str, suffix: str, params: GenerationParams
    ) -> AsyncGenerator[Delta, None]:
        self.calls.append(Call("infill", None, f"{prefix}<FILL>{suffix}", params, None))
        return self._stream()

    async def embed(self, inputs: list[str | list[int]]) -> Embeddings:
        """A fixed 4-dimensional unit vector per input, one token per character."""
        self.calls.append(Call("embed", None, repr(inputs), GenerationParams(), None))
        tokens = sum(len(i) for i in inputs)  # characters or token ids
        return Embeddings(vectors=[[0.5, 0.5, 0.5, 0.5] for _ in inputs], prompt_tokens=tokens)

    async def tokenize(self, text: str) -> list[int]:
        self.tokenized.append(text)
        return [ord(c) for c in text]

    async def detokenize(self, tokens: list[int]) -> str:
        return "".join(chr(t) for t in tokens)

    async def apply_template(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> str:
        return _render(messages)

    def is_alive(self) -> bool:
        return self.alive and not self.stopped

    async def healthy(self) -> bool:
        return self.is_alive() and self.answers

    async def stop(self) -> None:
        self.stopped = True


def _render(messages: list[dict[str, Any]]) -> str:
    return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


@dataclass
class FakeFactory:
    """Records every engine it starts; can be told to fail."""

    engines: list[FakeEngine] = field(default_factory=list)
    fail_with: str | None = None
    load_delay: float = 0.0
    engine_kwargs: dict[str, Any] = field(default_factory=dict)

    async def __call__(self, spec: LoadSpec) -> Engine:
        if self.load_delay:
            await asyncio.sleep(self.load_delay)
        if self.fail_with:
            raise EngineStartError(self.fail_with)
        engine = FakeEngine(spec=spec, **self.engine_kwargs)
        self.engines.append(engine)
        return engine

    @property
    def live(self) -> list[FakeEngine]:
        return [e for e in self.engines if not e.stopped]
