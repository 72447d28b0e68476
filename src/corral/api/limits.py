"""Request limits: body size (413) and per-request caps (400), each naming its setting.

:class:`BodyLimitMiddleware` reads a request body once, up to ``CORRAL_MAX_BODY_BYTES``, and
replays it to the route. JSON bodies on /api/* and /v1/* are checked for ``num_ctx``,
``num_predict`` / ``max_tokens``, the number of messages and the size of each image before any
model is loaded. Blob uploads (POST /api/blobs/...) stream straight through: they are bounded by
their digest and the store, not by the JSON cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.security import error_response
from corral.config import Settings
from corral.errors import LimitExceeded, PayloadTooLarge

__all__ = ["BodyLimitMiddleware", "Limits", "check_body"]

_CHECKED_PREFIXES = ("/api/", "/v1/")
_STREAMED_PREFIX = "/api/blobs/"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_num_ctx: int
    max_num_predict: int
    max_messages: int
    max_image_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_num_ctx=settings.max_num_ctx,
            max_num_predict=settings.max_num_predict,
            max_messages=settings.max_messages,
            max_image_bytes=settings.max_image_bytes,
        )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _over(limit: str, param: str, value: int, cap: int, what: str) -> LimitExceeded:
    return LimitExceeded(
        limit,
        f"{what} exceeds this server's limit: {param} is {value}, the most allowed is {cap} "
        f"({limit})",
        param=param,
    )


def _check_options(options: Any, where: str, limits: Limits) -> None:
    if not isinstance(options, dict):
        return
    num_ctx = _int(options.get("num_ctx"))
    if num_ctx is not None and num_ctx > limits.max_num_ctx:
        cap = limits.max_num_ctx
        raise _over("CORRAL_MAX_NUM_CTX", f"{where}.num_ctx", num_ctx, cap, "num_ctx")
    _check_predict(options.get("num_predict"), f"{where}.num_predict", limits)


def _check_predict(value: Any, param: str, limits: Limits) -> None:
    # negative values are Ollama's "until done" / "fill the context": bounded by num_ctx
    number = _int(value)
    if number is not None and number > limits.max_num_predict:
        raise _over("CORRAL_MAX_NUM_PREDICT", param, number, limits.max_num_predict, "num_predict")


def _images(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(param, base64 text) for every image: Ollama's ``images`` and OpenAI's data URLs."""
    sources: list[tuple[str, Any]] = [("images", body.get("images"))]
    messages = body.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict):
            continue
        sources.append((f"messages.{i}.images", message.get("images")))
        content = message.get("content")
        for j, part in enumerate(content if isinstance(content, list) else []):
            image = part.get("image_url") if isinstance(part, dict) else None
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url.startswith("data:"):
                yield f"messages.{i}.content.{j}.image_url", url.partition(",")[2]
    for param, images in sources:
        for k, image in enumerate(images if isinstance(images, list) else []):
            if isinstance(image, str):
                yield f"{param}.{k}", image


def _decoded_size(text: str) -> int:
    """Bytes a base64 text decodes to, without decoding it."""
    padding = len(text) - len(text.rstrip("="))
    return len(text) * 3 // 4 - min(padding, 2)


def check_body(body: dict[str, Any], limits: Limits) -> None:
    """Raise LimitExceeded for the first limit this request body is over."""
    _check_options(body.get("options"), "options", limits)
    _check_options(body.get("parameters"), "parameters", limits)  # /api/create
    for field in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        _check_predict(body.get(field), field, limits)
    messages = body.get("messages")
    if isinstance(messages, list) and len(messages) > limits.max_messages:
        raise _over(
            "CORRAL_MAX_MESSAGES", "messages", len(messages), limits.max_messages, "the chat"
        )
    for param, data in _images(body):
        size = _decoded_size(data)
        if size > limits.max_image_bytes:
            raise LimitExceeded(
                "CORRAL_MAX_IMAGE_BYTES",
                f"image {param} is about {size} bytes, over this server's limit of "
                f"{limits.max_image_bytes} bytes (CORRAL_MAX_IMAGE_BYTES)",
                param=param,
            )


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    def _too_large(self, size: int | None) -> PayloadTooLarge:
        shown = f"{size} bytes" if size is not None else "the request body"
        return PayloadTooLarge(
            f"request body too large: {shown} is over this server's limit of "
            f"{self.limits.max_body_bytes} bytes (CORRAL_MAX_BODY_BYTES)"
        )

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the cap (chunked bodies have no length)."""
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # a disconnect: let the route see an empty body
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limits.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(_STREAMED_PREFIX):
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.limits.max_body_bytes:
            await error_response(scope, self._too_large(declared))(scope, receive, send)
            return
        body = await self._read(receive)
        if body is None:
            await error_response(scope, self._too_large(None))(scope, receive, send)
            return
        if body and path.startswith(_CHECKED_PREFIXES):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # the route answers invalid JSON in its own words
            try:
                if isinstance(parsed, dict):
                    check_body(parsed, self.limits)
            except LimitExceeded as exc:
                await error_response(scope, exc)(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the real channel (for disconnect notices)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
