"""One timed streaming request to an Ollama- or OpenAI-compatible endpoint.

Everything is measured at the client, the same way for every server:

- time to first token (TTFT): request sent -> first piece of content (or thinking);
- generation time: first piece -> last piece; tokens are the server's count (Ollama's
  ``eval_count``, OpenAI's ``usage.completion_tokens`` asked for with
  ``stream_options.include_usage``), or the number of content chunks when it sends none;
- prompt tokens: the server's count (``prompt_eval_count`` / ``usage.prompt_tokens``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx

__all__ = ["Api", "BenchError", "Sample", "Target", "detect_api", "timed_request"]

Api = Literal["ollama", "openai"]


class BenchError(Exception):
    """The benchmark cannot go on (no server, unknown model, warm-up failed)."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    api: Api
    label: str
    api_key: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


@dataclass(slots=True)
class Sample:
    """One request's measurements (seconds, tokens); ``error`` set when it failed."""

    started: float  # perf_counter at send, for ordering
    duration: float = 0.0
    ttft: float | None = None
    gen_time: float | None = None  # first piece -> last piece
    prompt_tokens: int | None = None
    gen_tokens: int = 0
    chunks: int = 0
    counted_by: Literal["server", "chunks"] = "server"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def gen_rate(self) -> float | None:
        """Tokens per second of this stream after its first token."""
        if self.gen_time is None or self.gen_time <= 0 or self.gen_tokens < 2:
            return None
        return (self.gen_tokens - 1) / self.gen_time

    @property
    def prompt_rate(self) -> float | None:
        """Prompt tokens over the time to first token (it includes any queueing)."""
        if not self.prompt_tokens or not self.ttft:
            return None
        return self.prompt_tokens / self.ttft


async def detect_api(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Api:
    """Ollama when ``/api/version`` answers with a version, else OpenAI when ``/v1/models``
    answers; BenchError when neither does."""
    try:
        response = await client.get(f"{url}/api/version", headers=headers)
        if response.status_code == 200 and "version" in _json(response):
            return "ollama"
        response = await client.get(f"{url}/v1/models", headers=headers)
    except httpx.HTTPError as exc:
        raise BenchError(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 200:
        return "openai"
    raise BenchError(
        f"{url} answers neither /api/version (Ollama) nor /v1/models (OpenAI): "
        f"HTTP {response.status_code}; use --api to say which it speaks"
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_text(status: int, raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        return f"HTTP {status}: {text[:200]}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return f"HTTP {status}: {error or text[:200]}"


def _request(target: Target, model: str, prompt: str, max_tokens: int) -> tuple[str, Any]:
    messages = [{"role": "user", "content": prompt}]
    if target.api == "ollama":
        options = {"num_predict": max_tokens, "temperature": 0, "seed": 42}
        body = {"model": model, "messages": messages, "stream": True, "options": options}
        return f"{target.url}/api/chat", body
    body = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 42,
    }
    return f"{target.url}/v1/chat/completions", body


class _Reader:
    """Folds the stream's chunks into a Sample."""

    def __init__(self, sample: Sample, t0: float) -> None:
        self.sample = sample
        self.t0 = t0
        self.first: float | None = None
        self.last: float | None = None
        self.server_gen: int | None = None

    def piece(self, text: str) -> None:
        if not text:
            return
        now = time.perf_counter()
        if self.first is None:
            self.first = now
            self.sample.ttft = now - self.t0
        self.last = now
        self.sample.chunks += 1

    def ollama(self, chunk: dict[str, Any]) -> None:
        if "error" in chunk:
            raise _StreamError(str(chunk["error"]))
        message = chunk.get("message") or {}
        self.piece((message.get("content") or "") + (message.get("thinking") or ""))
        if chunk.get("done"):
            self.sample.prompt_tokens = chunk.get("prompt_eval_count")
            self.server_gen = chunk.get("eval_count")

    def openai(self, chunk: dict[str, Any]) -> None:
        if "error" in chunk:
            error = chunk["error"]
            raise _StreamError(str(error.get("message") if isinstance(error, dict) else error))
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            self.piece((delta.get("content") or "") + (delta.get("reasoning_content") or ""))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.sample.prompt_tokens = usage.get("prompt_tokens")
            self.server_gen = usage.get("completion_tokens")

    def finish(self) -> None:
        sample = self.sample
        if self.server_gen:
            sample.gen_tokens = int(self.server_gen)
        else:
            sample.gen_tokens, sample.counted_by = sample.chunks, "chunks"
        if self.first is not None and self.last is not None:
            sample.gen_time = self.last - self.first
        if sample.chunks == 0:
            raise _StreamError("the stream ended without any content")


class _StreamError(Exception):
    pass


async def timed_request(
    client: httpx.AsyncClient, target: Target, model: str, prompt: str, max_tokens: int
) -> Sample:
    """Send one streaming chat request and time it; failures are recorded, not raised."""
    url, body = _request(target, model, prompt, max_tokens)
    t0 = time.perf_counter()
    sample = Sample(started=t0)
    reader = _Reader(sample, t0)
    try:
        async with client.stream("POST", url, json=body, headers=target.headers()) as response:
            if response.status_code >= 400:
                sample.error = _error_text(response.status_code, await response.aread())
                return sample
            async for line in response.aiter_lines():
                line = line.strip()
                if target.api == "openai":
                    if not line.startswith("data:"):
                        continue
                    line = line[5:].strip()
                    if line == "[DONE]":
                        break
                if not line:
                    continue
                chunk = json.loads(line)
                if not isinstance(chunk, dict):
                    continue
                if target.api == "ollama":
                    reader.ollama(chunk)
                else:
                    reader.openai(chunk)
        reader.finish()
    except _StreamError as exc:
        sample.error = str(exc)
    except ValueError as exc:
        sample.error = f"invalid stream data: {exc}"
    except httpx.HTTPError as exc:
        sample.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        sample.duration = time.perf_counter() - t0
    return sample
