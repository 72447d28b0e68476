"""HTTP to one llama-server: streamed chat and raw completions, parsed into :class:`Delta`s.

Closing a stream (``aclose()`` of the generator, e.g. because corral's own client went
away) closes the connection to the engine at once, and llama-server then stops generating.

The client is aiohttp, not httpx: every streamed token goes through the HTTP parser, and
aiohttp's is C where httpx's (h11) is pure Python. Reading llama-server's SSE costs about
210-250 µs of CPU per token with aiohttp against 345-415 with httpx, and on a 2-core
machine that CPU is taken from the engine.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

import aiohttp

from corral.errors import (
    BadRequest,
    ContextLengthExceeded,
    EngineCrashed,
    EngineError,
    UnsupportedFeature,
)
from corral.runner.protocol import Delta, Embeddings, GenerationParams

__all__ = ["EngineClient"]

_CONNECT_TIMEOUT_S = 5.0
_HEALTH_TIMEOUT_S = 2.0
# below llama-server's own keep-alive timeout (5 s), so we never reuse a socket it closed
_KEEPALIVE_EXPIRY_S = 2.0
# a pooled keep-alive connection that the engine closed meanwhile (or a refused connect)
_RETRYABLE = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,  # ClientConnectorError included
    ConnectionResetError,  # aiohttp's ClientConnectionResetError: writing to a closed socket
)
_JSON_HEADERS = {"Content-Type": "application/json"}
# llama-server closes the connection after every streamed answer although it announces
# keep-alive; pooled, that socket made the next request fail once and reconnect. Saying so
# up front lets the pool open a fresh one directly: a one-token /api/chat round trip went
# from 26.4 to 24.2 ms here.
_STREAM_HEADERS = {**_JSON_HEADERS, "Connection": "close"}


def _encode(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities are an error, not invalid JSON on the wire."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _done_reason(finish: str | None) -> str:
    return "length" if finish in ("length", "limit") else "stop"


def _final(
    finish: str | None,
    timings: dict[str, Any] | None,
    tool_calls: list[dict[str, Any]],
    stop_word: str | None = None,
) -> Delta:
    t = timings or {}
    return Delta(
        tool_calls=tool_calls,
        done=True,
        done_reason=_done_reason(finish),
        stop_word=stop_word,
        prompt_tokens=int(t.get("prompt_n") or 0),
        cached_tokens=int(t.get("cache_n") or 0),
        prompt_ms=float(t.get("prompt_ms") or 0.0),
        eval_tokens=int(t.get("predicted_n") or 0),
        eval_ms=float(t.get("predicted_ms") or 0.0),
        draft_tokens=int(t.get("draft_n") or 0),
        draft_accepted=int(t.get("draft_n_accepted") or 0),
    )


def _stop_word(result: Any) -> str | None:
    """The stop string that ended an answer, from the engine's final result."""
    if not isinstance(result, dict) or result.get("stop_type") != "word":
        return None
    word = result.get("stopping_word")
    return word if isinstance(word, str) and word else None


def _parse_arguments(name: str, raw: str) -> dict[str, Any]:
    """A tool call's streamed JSON arguments as a dict; clients need an object to call with."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise EngineError(
            f"the model called {name!r} with arguments that are not a JSON object: {raw[:200]}"
        )
    return value


def _ollama_logprob(item: dict[str, Any], top: int | None = None) -> dict[str, Any]:
    """The engine's ``{token, logprob, bytes, top_logprobs}``, trimmed to ``top`` alternatives."""
    alternatives = item.get("top_logprobs") or []
    if top is not None:
        alternatives = alternatives[:top]
    return {
        "token": item.get("token", ""),
        "logprob": float(item.get("logprob", 0.0)),
        "bytes": item.get("bytes"),
        "top_logprobs": [
            {
                "token": a.get("token", ""),
                "logprob": float(a.get("logprob", 0.0)),
                "bytes": a.get("bytes"),
            }
            for a in alternatives
        ],
    }


class EngineClient:
    """A connection pool to one engine at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        label: str,
        *,
        is_alive: Callable[[], bool] | None = None,
        max_connections: int = 64,
        context_limit: int | None = None,
    ) -> None:
        self.label = label
        self.context_limit = context_limit  # for a clear "does not fit" message
        self._base_url = base_url
        self._max_connections = max_connections
        self._closed = False
        self._is_alive = is_alive or (lambda: True)
        self._http: aiohttp.ClientSession | None = None
        self._responses: set[aiohttp.ClientResponse] = set()  # open ones, for aclose()

    def _session(self) -> aiohttp.ClientSession:
        """The pool, made at first use: aiohttp needs the running event loop for it."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                self._base_url,
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, keepalive_timeout=_KEEPALIVE_EXPIRY_S
                ),
                # no read timeout: a stream may legitimately be silent while a long prompt loads
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT_S),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # never send loopback traffic through an HTTP(S)_PROXY
            )
        return self._http

    async def aclose(self) -> None:
        """Close every connection, ending the streams still running (EngineCrashed)."""
        self._closed = True
        # a read in progress fails at once; closing the session alone would leave it waiting
        for response in list(self._responses):
            response.close()
        if self._http is not None:
            await self._http.close()

    # -- requests -------------------------------------------------------------------------

    def chat(
        self,
        messages: list[dict[str, Any]],
        params: GenerationParams,
        tools: list[dict[str, Any]] | None = None,
    ) -> AsyncGenerator[Delta, None]:
        """``POST /v1/chat/completions``: the engine applies the model's chat template."""
        body: dict[str, Any] = dict(params.sampling)
        body["messages"] = messages
        body["stream"] = True
        body["cache_prompt"] = True
        if tools:
            body["tools"] = tools
        if params.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"schema": params.json_schema},
            }
        elif params.json_mode:
            body["response_format"] = {"type": "json_object"}
        if params.top_logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = params.top_logprobs
        if body.get("stop"):
            # which stop string ended the answer (Anthropic's stop_sequence): the engine says
            # so only in its debug field, trimmed here to the two entries wanted
            body["verbose"] = True
            body["response_fields"] = ["stop_type", "stopping_word"]
        if isinstance(params.think, bool):
            body["chat_template_kwargs"] = {"enable_thinking": params.think}
        elif params.think:
            body["reasoning_effort"] = params.think
            body["chat_template_kwargs"] = {"reasoning_effort": params.think}
        return self._chat_deltas(body)

    def complete(self, prompt: str, params: GenerationParams) -> AsyncGenerator[Delta, None]:
        """``POST /completion`` with a raw prompt (no template)."""
        body: dict[str, Any] = dict(params.sampling)
        body["prompt"] = prompt
        body["stream"] = True
        body["cache_prompt"] = True
        # the last chunk would otherwise echo the whole prompt and the generation settings
        body["response_fields"] = [
            "content",
            "stop",
            "stop_type",
            "stopping_word",
            "timings",
            "completion_probabilities",
        ]
        if params.json_schema is not None:
            body["json_schema"] = params.json_schema
        elif params.json_mode:
            body["json_schema"] = {"type": "object"}
        if params.top_logprobs is not None:
            body["n_probs"] = max(params.top_logprobs, 1)
        return self._completion_deltas(body, params.top_logprobs)

    def infill(
        self, prefix: str, suffix: str, params: GenerationParams
    ) -> AsyncGenerator[Delta, None]:
        """``POST /infill``: the engine arranges the model's FIM tokens around the gap."""
        body: dict[str, Any] = dict(params.sampling)
        body.update(input_prefix=prefix, input_suffix=suffix, prompt="", stream=True)
        body["cache_prompt"] = True
        body["response_fields"] = ["content", "stop", "stop_type", "stopping_word", "timings"]
        return self._completion_deltas(body, None, path="/infill")

    async def embed(self, inputs: list[str | list[int]]) -> Embeddings:
        """``POST /v1/embeddings`` (normalised); token lists skip the engine's tokenizer."""
        data = await self._post_json("/v1/embeddings", {"input": inputs})
        rows = sorted(data.get("data") or [], key=lambda row: row.get("index", 0))
        return Embeddings(
            vectors=[row["embedding"] for row in rows],
            prompt_tokens=int((data.get("usage") or {}).get("prompt_tokens") or 0),
        )

    async def tokenize(self, text: str) -> list[int]:
        data = await self._post_json("/tokenize", {"content": text, "add_special": False})
        return [int(t) for t in data.get("tokens") or []]

    async def detokenize(self, tokens: list[int]) -> str:
        return str((await self._post_json("/detokenize", {"tokens": tokens})).get("content", ""))

    async def apply_template(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> str:
        body: dict[str, Any] = {"messages": messages}
        if tools:
            body["tools"] = tools
        return str((await self._post_json("/apply-template", body)).get("prompt", ""))

    async def healthy(self) -> bool:
        """``GET /health`` answers 200 in time (503 while loading counts as no)."""
        if self._closed:
            return False
        try:
            timeout = aiohttp.ClientTimeout(total=_HEALTH_TIMEOUT_S)
            async with self._session().get("/health", timeout=timeout) as response:
                await response.read()
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._send(path, body)
        try:
            raw = await response.read()
        except aiohttp.ClientError as exc:
            raise self._crashed(exc) from exc
        finally:
            self._release(response)
        data = json.loads(raw)
        return data if isinstance(data, dict) else {"data": data}

    # -- parsing ---------------------------------------------------------------------------

    async def _chat_deltas(self, body: dict[str, Any]) -> AsyncGenerator[Delta, None]:
        finish: str | None = None
        timings: dict[str, Any] | None = None
        stop_word: str | None = None
        calls: dict[int, dict[str, str]] = {}
        async with contextlib.aclosing(self._events("/v1/chat/completions", body)) as events:
            async for event in events:
                if "timings" in event:
                    timings = event["timings"]
                if "__verbose" in event:
                    stop_word = _stop_word(event["__verbose"])
                for choice in event.get("choices") or ():
                    delta = choice.get("delta")
                    if delta:
                        content = delta.get("content") or ""
                        thinking = delta.get("reasoning_content") or ""
                        logprobs = (choice.get("logprobs") or {}).get("content") or []
                        if content or thinking:
                            yield Delta(
                                content=content,
                                thinking=thinking,
                                logprobs=[_ollama_logprob(p) for p in logprobs],
                            )
                        for part in delta.get("tool_calls") or ():
                            call = calls.setdefault(
                                part.get("index", len(calls)), {"name": "", "arguments": ""}
                            )
                            function = part.get("function") or {}
                            call["name"] += function.get("name") or ""
                            call["arguments"] += function.get("arguments") or ""
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
        if finish is None:
            raise self._crashed("the answer ended before it was complete")
        tool_calls = [
            {
                "function": {
                    "name": c["name"],
                    "arguments": _parse_arguments(c["name"], c["arguments"]),
                }
            }
            for _, c in sorted(calls.items())
        ]
        yield _final(finish, timings, tool_calls, stop_word)

    async def _completion_deltas(
        self, body: dict[str, Any], top_logprobs: int | None, path: str = "/completion"
    ) -> AsyncGenerator[Delta, None]:
        async with contextlib.aclosing(self._events(path, body)) as events:
            async for event in events:
                content = event.get("content") or ""
                if content:
                    probs = event.get("completion_probabilities") or []
                    if top_logprobs is not None:
                        probs = [_ollama_logprob(p, top_logprobs) for p in probs]
                    yield Delta(content=content, logprobs=probs)
                if event.get("stop"):
                    yield _final(
                        event.get("stop_type"), event.get("timings"), [], _stop_word(event)
                    )
                    return
        raise self._crashed("the answer ended before it was complete")

    async def _events(
        self, path: str, body: dict[str, Any]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The JSON objects of an SSE response, until ``[DONE]`` or the end of the stream."""
        response = await self._send(path, body, stream=True)
        partial: list[bytes] = []  # the start of a line that is still arriving
        try:
            # whatever arrived, at once: mostly one whole event per read
            async for chunk in response.content.iter_any():
                if b"\n" not in chunk:
                    partial.append(chunk)
                    continue
                if partial:
                    partial.append(chunk)
                    chunk = b"".join(partial)
                    partial.clear()
                lines = chunk.split(b"\n")
                if rest := lines.pop():
                    partial.append(rest)
                for line in lines:
                    if (event := self._event(line)) is not None:
                        yield event
            if partial and (event := self._event(b"".join(partial))) is not None:
                yield event
        except aiohttp.ClientError as exc:
            raise self._crashed(exc) from exc
        finally:
            self._release(response)

    def _event(self, line: bytes) -> Any:
        """The JSON of one ``data:`` line; None for anything else."""
        if not line.startswith(b"data:"):
            return None  # blank separators, ": ping" comments
        data = line[5:].strip()
        if data == b"[DONE]":
            return None  # the stream ends right after it; read on to reuse the connection
        event = json.loads(data.decode("utf-8", "replace"))
        if "error" in event:
            raise self._engine_error(event["error"], None)
        return event

    async def _send(
        self, path: str, body: dict[str, Any], *, stream: bool = False
    ) -> aiohttp.ClientResponse:
        if self._closed:
            raise self._crashed("closed")
        data = _encode(body)
        for attempt in range(2):
            if self._closed:  # stopped while the first attempt was failing
                raise self._crashed("closed")
            try:
                headers = _STREAM_HEADERS if stream else _JSON_HEADERS
                response = await self._session().post(path, data=data, headers=headers)
            except _RETRYABLE as exc:
                # a pooled keep-alive connection that the engine closed meanwhile: retry once
                if attempt == 0 and self._is_alive():
                    continue
                raise self._crashed(exc) from exc
            except aiohttp.ClientError as exc:
                raise self._crashed(exc) from exc
            self._responses.add(response)
            if response.status >= 400:
                try:
                    raw = await response.read()
                except aiohttp.ClientError as exc:
                    raise self._crashed(exc) from exc
                finally:
                    self._release(response)
                raise self._status_error(response, raw)
            return response
        raise AssertionError("unreachable")

    def _release(self, response: aiohttp.ClientResponse) -> None:
        self._responses.discard(response)
        if response.content.is_eof():
            response.release()  # read to the end: the connection goes back to the pool
        else:
            response.close()  # the engine sees the connection close and stops generating

    # -- errors ----------------------------------------------------------------------------

    def _crashed(self, why: object) -> EngineCrashed:
        if self._closed:
            return EngineCrashed(f"engine for {self.label} was stopped")
        if isinstance(why, BaseException):
            why = str(why) or type(why).__name__
        return EngineCrashed(f"engine for {self.label} stopped unexpectedly: {why}")

    def _status_error(
        self, response: aiohttp.ClientResponse, raw: bytes
    ) -> EngineError | BadRequest:
        try:
            error = json.loads(raw).get("error")
        except (ValueError, AttributeError):
            error = None
        if not isinstance(error, dict):
            text = raw.decode("utf-8", "replace").strip()
            error = {"message": text or response.reason or ""}
        return self._engine_error(error, response.status)

    def _engine_error(self, error: Any, status: int | None) -> EngineError | BadRequest:
        if not isinstance(error, dict):
            error = {"message": str(error)}
        message = str(error.get("message") or "unknown error")
        code = error.get("code")
        status = status or (code if isinstance(code, int) else 500)
        if status == 501 or error.get("type") == "not_supported_error":
            return UnsupportedFeature(message)
        if error.get("type") == "exceed_context_size_error":
            # the engine's "..., try increasing it" does not say what to increase
            tokens, n_ctx = error.get("n_prompt_tokens"), error.get("n_ctx")
            if isinstance(tokens, int) and isinstance(n_ctx, int):
                return ContextLengthExceeded(tokens, n_ctx, limit=self.context_limit)
        if 400 <= status < 500:
            return BadRequest(message)
        return EngineError(f"engine for {self.label} failed: {message}")
