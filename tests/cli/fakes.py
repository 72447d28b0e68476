"""A fake corral server for ``httpx.MockTransport``, and canned answers."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import httpx

Route = Callable[[Any], httpx.Response]


def ndjson(*chunks: dict[str, Any], status: int = 200) -> httpx.Response:
    body = "".join(json.dumps(c) + "\n" for c in chunks)
    return httpx.Response(status, content=body.encode())


def answer(*tokens: str, **final: Any) -> httpx.Response:
    """A streamed chat answer: one chunk per token, then the final ``done`` chunk."""
    chunks: list[dict[str, Any]] = [
        {"model": "m", "message": {"role": "assistant", "content": t}, "done": False}
        for t in tokens
    ]
    done = {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True}
    chunks.append({**done, "done_reason": "stop", **final})
    return ndjson(*chunks)


class FakeServer:
    """Routes ``(method, path)`` to canned answers and records every request body (the
    decoded JSON, or the raw bytes of a body that is not JSON, such as a blob)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route | list[Route]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def on(self, method: str, path: str, *responses: Route) -> None:
        """Answer with ``responses`` in turn; the last one repeats."""
        self.routes[(method, path)] = list(responses)

    def json(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.on(method, path, lambda _req: httpx.Response(status, json=body))

    def chats(self) -> list[dict[str, Any]]:
        return [body for _, path, body in self.requests if path == "/api/chat"]

    def paths(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _ in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body: Any = {}
        if request.content:
            try:
                body = json.loads(request.content)
            except ValueError:
                body = request.content
        self.requests.append((request.method, request.url.path, body))
        self.headers.append(request.headers)
        routes = self.routes.get((request.method, request.url.path))
        if not routes:
            return httpx.Response(404, json={"error": f"no route {request.url.path}"})
        assert isinstance(routes, list)
        route = routes.pop(0) if len(routes) > 1 else routes[0]
        return route(body)


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True
