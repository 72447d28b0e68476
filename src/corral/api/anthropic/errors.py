"""Errors on /v1/messages in Anthropic's shape: ``{"type": "error", "error": {"type",
"message"}}``, with the error type the SDK maps to its exception classes.

The rest of /v1 is OpenAI's (:mod:`corral.api.openai.errors`): this dispatch is installed
after that one and claims only the Messages paths.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral.api.errors import describe_validation_error
from corral.errors import CorralError

__all__ = [
    "anthropic_error",
    "error_body",
    "install_anthropic_error_rendering",
    "is_messages_path",
]

log = logging.getLogger(__name__)

PREFIX = "/v1/messages"
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",  # corral's busy answer; Anthropic's own overload status is 529
    529: "overloaded_error",
}
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def is_messages_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _validation_message(errors: list[Any]) -> str:
    first = errors[0] if errors else {}
    if first.get("type") == "extra_forbidden":
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return f"{field}: this field is not supported by corral's Messages API"
    return describe_validation_error(errors)


def anthropic_error(exc: Exception) -> tuple[int, dict[str, Any]]:
    """Any exception as (status, Anthropic error body); for responses and SSE events."""
    if isinstance(exc, CorralError):
        status, message = exc.status_code, exc.message
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, message)
    elif isinstance(exc, RequestValidationError):
        status, message = 400, _validation_message(list(exc.errors()))
    elif isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if status == 404:
            message = "Not found: no such endpoint under /v1/messages"
    else:
        log.error("unhandled error", exc_info=exc)
        status, message = 500, f"internal error: {exc}"
    return status, error_body(status, message)


def _dispatch(fallback: Handler) -> Callable[[Request, Any], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        if is_messages_path(request.scope.get("path", "")):
            status, body = anthropic_error(exc)
            headers = exc.headers if isinstance(exc, StarletteHTTPException) else None
            return JSONResponse(body, status_code=status, headers=headers)
        result = fallback(request, exc)
        return await result if inspect.isawaitable(result) else result

    return handle


def install_anthropic_error_rendering(app: FastAPI) -> None:
    """After :func:`install_openai_error_rendering`, which installs a handler for each class."""
    for exc_class in (CorralError, RequestValidationError, StarletteHTTPException, Exception):
        app.exception_handlers[exc_class] = _dispatch(app.exception_handlers[exc_class])
