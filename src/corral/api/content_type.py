"""Request bodies on /api and /v1 are JSON, whatever Content-Type says.

``curl http://localhost:11434/api/generate -d '{...}'`` is how Ollama's own docs call the API,
and curl's ``-d`` labels the body ``application/x-www-form-urlencoded``; Ollama decodes the body
as JSON regardless, and so do many scripts' clients that send no Content-Type at all. FastAPI
would instead try to read a form and answer 400, so this middleware relabels such bodies as
JSON before routing. Blob uploads (raw bytes) are left alone.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["JsonBodyMiddleware"]

_JSON = b"application/json"
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _needs_relabel(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    if scope["method"] not in _BODY_METHODS or path.startswith("/api/blobs/"):
        return False
    return path.startswith(("/api/", "/v1/"))


class JsonBodyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _needs_relabel(scope):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            original = dict(scope["headers"]).get(b"content-type", b"")
            if b"json" not in original.lower():
                scope = {**scope, "headers": [*headers, (b"content-type", _JSON)]}
        await self.app(scope, receive, send)
