"""A client of corral's HTTP API (which is Ollama's): :class:`Client` and :class:`AsyncClient`.

Importing this module is cheap; httpx (~80 ms) is imported when the first client is made,
so ``corral --version`` and ``corral --help`` never pay for it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncGenerator, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from corral.address import client_base_url

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncClient", "Client", "ClientError", "RequestOptions", "ServerUnreachable"]

Chunk = dict[str, Any]
START_HINT = 'start it with "corral serve" (or "make run")'


class ClientError(Exception):
    """The server answered with an error (``{"error": ...}``), or the connection broke."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ServerUnreachable(ClientError):
    """Nothing accepts connections at the server's address."""

    def __init__(self, base_url: str) -> None:
        super().__init__(f"could not connect to corral at {base_url}; {START_HINT}")
        self.base_url = base_url


class RequestOptions(TypedDict, total=False):
    """Keyword arguments of ``chat`` and ``generate`` (``stream`` defaults to true)."""

    options: Mapping[str, Any] | None
    system: str | None
    format: str | Mapping[str, Any] | None
    keep_alive: str | float | None
    think: bool | str | None
    stream: bool


def _load_httpx() -> None:
    """Import httpx without ``httpx._main`` (its CLI: rich, click, pygments, ~40 ms).

    A ``None`` in ``sys.modules`` makes that import fail, so httpx falls back to a ``main``
    that only says the CLI extra is missing (the CLI never calls it).
    """
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        del sys.modules["httpx._main"]


def api_key_from_env() -> str | None:
    """The key the CLI sends: ``CORRAL_API_KEY``, else ``OLLAMA_API_KEY`` (what the ``ollama``
    client sends, so one variable serves both)."""
    for name in ("CORRAL_API_KEY", "OLLAMA_API_KEY"):
        if value := os.environ.get(name, "").strip():
            return value
    return None


def _client_kwargs(base_url: str, timeout: float | None, api_key: str | None) -> dict[str, Any]:
    _load_httpx()
    import httpx

    key = api_key if api_key is not None else api_key_from_env()
    return {
        "base_url": base_url,
        "headers": {"Authorization": f"Bearer {key}"} if key else {},
        # Model loads can take minutes and answers stream for as long as they stream.
        "timeout": httpx.Timeout(timeout, connect=10.0),
        # Loading CA certificates costs ~35 ms; a plain-http base URL never needs them
        # (requests only go to base_url and redirects are not followed).
        "verify": base_url.startswith("https:"),
        # Like Go's ProxyFromEnvironment: never send loopback traffic through a proxy.
        "trust_env": httpx.URL(base_url).host not in ("127.0.0.1", "localhost", "::1"),
    }


@contextmanager
def _errors(base_url: str) -> Iterator[None]:
    """Turn httpx's transport errors into :class:`ServerUnreachable` / :class:`ClientError`."""
    import httpx

    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ServerUnreachable(base_url) from exc
    except httpx.TransportError as exc:
        raise ClientError(f"connection to corral at {base_url} failed: {exc}") from exc


def _check(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    message = response.text.strip() or f"{response.status_code} {response.reason_phrase}"
    with suppress(ValueError):
        body = json.loads(message)
        if isinstance(body, dict) and "error" in body:
            message = str(body["error"])
    raise ClientError(message, response.status_code)


def _parse_line(line: str, status_code: int) -> Chunk | None:
    if not line.strip():
        return None
    chunk = None
    with suppress(ValueError):
        chunk = json.loads(line)
    if not isinstance(chunk, dict):
        raise ClientError(f"invalid response line from server: {line[:200]!r}", status_code)
    if "error" in chunk:
        raise ClientError(str(chunk["error"]), status_code)
    return chunk


def _body(model: str, key: str, value: Any, kw: RequestOptions) -> dict[str, Any]:
    """A chat (``key="messages"``) or generate (``key="prompt"``) request body."""
    body: dict[str, Any] = {"model": model, key: value, "stream": kw.get("stream", True)}
    if (system := kw.get("system")) is not None and key == "messages":
        body["messages"] = [{"role": "system", "content": system}, *value]
    elif system is not None:
        body["system"] = system
    if options := kw.get("options"):
        body["options"] = dict(options)
    body.update({k: v for k in ("format", "keep_alive", "think") if (v := kw.get(k)) is not None})
    return body


def _show_body(model: str, verbose: bool, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "verbose": True} if verbose else {"model": model}
    return body | {k: v for k, v in extra.items() if v}


def _drop_none(body: Mapping[str, Any]) -> dict[str, Any]:
    """``/api/create`` and ``/api/embed`` bodies: Go's ``omitempty``, more or less."""
    return {k: v for k, v in body.items() if v is not None}


class Client:
    """Synchronous client. ``transport`` lets tests pass an ``httpx.MockTransport``."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
        api_key: str | None = None,
    ) -> None:
        """``api_key``: sent as ``Authorization: Bearer``; by default from the environment
        (:func:`api_key_from_env`)."""
        self.base_url = (base_url or client_base_url()).rstrip("/")
        kwargs = _client_kwargs(self.base_url, timeout, api_key)
        import httpx

        self._http = httpx.Client(transport=transport, **kwargs)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        with _errors(self.base_url):
            return self._http.request(method, path, json=body)

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = self._send(method, path, body)
        _check(response)
        return response

    def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(method, path, body).json()
        return result

    def _stream(self, path: str, body: dict[str, Any]) -> Generator[Chunk, None, None]:
        with _errors(self.base_url), self._http.stream("POST", path, json=body) as response:
            if response.status_code >= 400:
                response.read()
                _check(response)
            for line in response.iter_lines():
                if (chunk := _parse_line(line, response.status_code)) is not None:
                    yield chunk

    def version(self) -> dict[str, Any]:
        return self._json("GET", "/api/version")

    def list(self) -> dict[str, Any]:  # GET /api/tags: the local models
        return self._json("GET", "/api/tags")

    def ps(self) -> dict[str, Any]:  # GET /api/ps: the loaded models
        return self._json("GET", "/api/ps")

    def info(self) -> dict[str, Any]:  # GET /api/info: the server's machine, engine, settings
        return self._json("GET", "/api/info")

    def fit(self, model: str, **options: Any) -> dict[str, Any]:
        """POST /api/fit: will ``model`` (local or in its registry) fit the server's machine?
        ``options``: num_ctx, num_parallel, num_gpu, insecure (None values are left out)."""
        return self._json("POST", "/api/fit", {"model": model, **_drop_none(options)})

    def show(self, model: str, *, verbose: bool = False, **extra: Any) -> dict[str, Any]:
        """``POST /api/show``; ``verbose`` adds all metadata; ``extra``: ``system``, ``options``
        (a chat session's, as ``ollama run``'s ``/show`` sends them; empty ones are left out)."""
        return self._json("POST", "/api/show", _show_body(model, verbose, **extra))

    def copy(self, source: str, destination: str) -> None:
        self._call("POST", "/api/copy", {"source": source, "destination": destination})

    def delete(self, model: str) -> None:
        self._call("DELETE", "/api/delete", {"model": model})

    def unload(self, model: str) -> None:
        """What ``ollama stop`` sends: an empty generate with ``keep_alive: 0``."""
        for _ in self._stream("/api/generate", {"model": model, "keep_alive": 0}):
            pass

    def create(self, model: str, **fields: Any) -> Generator[Chunk, None, None]:
        """Yield the status chunks of ``POST /api/create``.

        ``fields`` are Ollama's: ``from_`` (sent as ``from``), ``files``, ``adapters``,
        ``template``, ``license``, ``system``, ``parameters``, ``messages``, ``quantize``;
        ``None`` values are left out.
        """
        body = _drop_none({"model": model, "from": fields.pop("from_", None), **fields})
        return self._stream("/api/create", body)

    def blob_exists(self, digest: str) -> bool:
        """``HEAD /api/blobs/<digest>``: does the server already have this blob?"""
        response = self._send("HEAD", f"/api/blobs/{digest}")
        if response.status_code == 404:
            return False
        _check(response)
        return True

    def create_blob(self, digest: str, data: Iterable[bytes], size: int) -> None:
        """``POST /api/blobs/<digest>`` with ``data`` streamed (``size`` bytes in all)."""
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        with _errors(self.base_url):
            response = self._http.post(f"/api/blobs/{digest}", content=data, headers=headers)
        _check(response)

    def pull(self, model: str, *, insecure: bool = False) -> Generator[Chunk, None, None]:
        """Yield the status chunks of ``POST /api/pull``."""
        return self._stream("/api/pull", {"model": model, "insecure": insecure, "stream": True})

    def push(self, model: str, *, insecure: bool = False) -> Generator[Chunk, None, None]:
        """Yield the status chunks of ``POST /api/push``."""
        return self._stream("/api/push", {"model": model, "insecure": insecure, "stream": True})

    def embed(self, model: str, input: str | Sequence[str], **kw: Any) -> dict[str, Any]:
        """``POST /api/embed``; ``kw``: truncate, options, keep_alive, dimensions."""
        body = _drop_none({"model": model, "input": input, **kw})
        return self._json("POST", "/api/embed", body)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``GET /health/ready``: ``(True, body)`` on 200, ``(False, body)`` otherwise."""
        response = self._send("GET", "/health/ready")
        body: Any = {"status_code": response.status_code, "body": response.text}
        with suppress(ValueError):
            body = response.json()
        return response.status_code == 200, body if isinstance(body, dict) else {"body": body}

    def chat(
        self, model: str, messages: Sequence[Mapping[str, Any]], **kw: Unpack[RequestOptions]
    ) -> Generator[Chunk, None, None]:
        """Yield the chunks of ``POST /api/chat``; ``system`` becomes a leading system message.

        Closing the iterator (or leaving the loop) closes the connection: the server stops.
        """
        return self._stream("/api/chat", _body(model, "messages", list(messages), kw))

    def generate(
        self, model: str, prompt: str, **kw: Unpack[RequestOptions]
    ) -> Generator[Chunk, None, None]:
        """Yield the NDJSON chunks of ``POST /api/generate``."""
        return self._stream("/api/generate", _body(model, "prompt", prompt, kw))


class AsyncClient:
    """The asyncio twin of :class:`Client` (``await``-able calls, ``async for`` streams)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        api_key: str | None = None,
    ) -> None:
        """``api_key``: sent as ``Authorization: Bearer``; by default from the environment
        (:func:`api_key_from_env`)."""
        self.base_url = (base_url or client_base_url()).rstrip("/")
        kwargs = _client_kwargs(self.base_url, timeout, api_key)
        import httpx

        self._http = httpx.AsyncClient(transport=transport, **kwargs)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        with _errors(self.base_url):
            response = await self._http.request(method, path, json=body)
        _check(response)
        return response

    async def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = (await self._call(method, path, body)).json()
        return result

    async def _stream(self, path: str, body: dict[str, Any]) -> AsyncGenerator[Chunk, None]:
        with _errors(self.base_url):
            async with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _check(response)
                async for line in response.aiter_lines():
                    if (chunk := _parse_line(line, response.status_code)) is not None:
                        yield chunk

    async def version(self) -> dict[str, Any]:
        return await self._json("GET", "/api/version")

    async def list(self) -> dict[str, Any]:
        return await self._json("GET", "/api/tags")

    async def ps(self) -> dict[str, Any]:
        return await self._json("GET", "/api/ps")

    async def show(self, model: str, *, verbose: bool = False) -> dict[str, Any]:
        return await self._json("POST", "/api/show", _show_body(model, verbose))

    async def copy(self, source: str, destination: str) -> None:
        await self._call("POST", "/api/copy", {"source": source, "destination": destination})

    async def delete(self, model: str) -> None:
        await self._call("DELETE", "/api/delete", {"model": model})

    def chat(
        self, model: str, messages: Sequence[Mapping[str, Any]], **kw: Unpack[RequestOptions]
    ) -> AsyncGenerator[Chunk, None]:
        """Like :meth:`Client.chat`: ``async for chunk in client.chat(...)``."""
        return self._stream("/api/chat", _body(model, "messages", list(messages), kw))

    def generate(
        self, model: str, prompt: str, **kw: Unpack[RequestOptions]
    ) -> AsyncGenerator[Chunk, None]:
        """Like :meth:`Client.generate`: ``async for chunk in client.generate(...)``."""
        return self._stream("/api/generate", _body(model, "prompt", prompt, kw))
