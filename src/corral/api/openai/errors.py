"""How the /v1 surface renders errors: ``{"error": {"message", "type", "param", "code"}}``.

The app's handlers render Ollama's ``{"error": "..."}``. :func:`install_openai_error_rendering`
wraps each of them so that requests under ``/v1/`` get OpenAI's shape (which the ``openai``
SDK reads into its exceptions) and every other path keeps the handler it had. Call it after
``corral.api.errors.install_error_handlers``.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from corral.errors import (
    ContextLengthExceeded,
    CorralError,
    InvalidOption,
    ModelNotFound,
    RequestCancelled,
    ServerBusy,
    UnsupportedFeature,
)

__all__ = [
    "InvalidParameter",
    "UnsupportedParameter",
    "error_body",
    "install_openai_error_rendering",
    "is_openai_path",
    "openai_error",
    "render_openai_error",
]

log = logging.getLogger(__name__)

PREFIX = "/v1"
Handler = Callable[[Request, Any], Response | Awaitable[Response]]
# what FastAPI does when the app installed nothing of its own for these
_FASTAPI_DEFAULTS: dict[type[Exception], Handler] = {
    StarletteHTTPException: http_exception_handler,
    RequestValidationError: request_validation_exception_handler,
}


class InvalidParameter(InvalidOption):
    """A request field with a value corral cannot use; ``param`` names the field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class UnsupportedParameter(UnsupportedFeature):
    """A documented OpenAI field that corral cannot honour; refused rather than ignored."""

    def __init__(self, param: str, message: str | None = None) -> None:
        super().__init__(message or f"'{param}' is not supported by corral")
        self.param = param


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    if status == 404:
        kind = "not_found_error"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _corral_error(exc: CorralError) -> tuple[str | None, str | None]:
    """(param, code) for one of corral's typed errors; matched by type, never by message."""
    param: str | None = getattr(exc, "param", None)
    if isinstance(exc, ModelNotFound):
        return "model", "model_not_found"
    if isinstance(exc, ContextLengthExceeded):
        return param, "context_length_exceeded"  # OpenAI's code for the same refusal
    if isinstance(exc, UnsupportedParameter):
        return param, "unsupported_parameter"
    if isinstance(exc, UnsupportedFeature):
        return param, "unsupported_feature"
    if isinstance(exc, InvalidParameter):
        return param, "invalid_value"
    if isinstance(exc, ServerBusy):
        return None, "server_busy"
    if isinstance(exc, RequestCancelled):
        return None, "request_cancelled"
    return param, None


# pydantic adds union members to error locations ("str", "list[ContentPart]", ...)
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|bytes|.*\[.*\])$")


def _validation_error(errors: list[Any]) -> tuple[str, str | None, str | None]:
    """(message, param, code) for the most specific of pydantic's errors."""
    if not errors:
        return "invalid request body", None, None
    first = max(errors, key=lambda e: len(e.get("loc", ())))
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return f"Invalid JSON in request body: {detail}".rstrip(": "), None, "invalid_json"
    parts = [
        str(p)
        for p in first.get("loc", ())
        if p != "body" and not (isinstance(p, str) and _UNION_TAG.match(p))
    ]
    param = ".".join(parts) or None
    if kind == "missing":
        if param is None:
            return "Missing request body.", None, "missing_required_parameter"
        return f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    message = str(first.get("msg", "invalid value"))
    if param is None:
        return f"Invalid request body: {message}.", None, "invalid_value"
    code = "invalid_type" if kind.endswith("_type") else "invalid_value"
    return f"Invalid value for '{param}': {message}.", param, code


def openai_error(exc: Exception) -> tuple[int, dict[str, Any]]:
    """Any exception as (status, OpenAI error body); used for responses and SSE events."""
    if isinstance(exc, CorralError):
        status, message = exc.status_code, exc.message
        param, code = _corral_error(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, message)
    elif isinstance(exc, RequestValidationError):
        status = 400  # OpenAI answers 400 where FastAPI would say 422
        message, param, code = _validation_error(list(exc.errors()))
    elif isinstance(exc, StarletteHTTPException):
        status, param = exc.status_code, None
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status)
        if status == 404:
            message = "Not found: no such endpoint under /v1"
    else:
        log.error("unhandled error", exc_info=exc)
        status, message, param, code = 500, f"internal error: {exc}", None, None
    return status, error_body(status, message, param=param, code=code)


def render_openai_error(exc: Exception) -> JSONResponse:
    status, body = openai_error(exc)
    headers = exc.headers if isinstance(exc, StarletteHTTPException) else None
    return JSONResponse(body, status_code=status, headers=headers)


def is_openai_path(request: Request) -> bool:
    path: str = request.scope.get("path", "")
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == PREFIX or path.startswith(PREFIX + "/")


def _dispatch(fallback: Handler | None) -> Callable[[Request, Any], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        if is_openai_path(request):
            return render_openai_error(exc)
        if fallback is None:
            raise exc  # nothing was installed for this class: as if we were not here
        result = fallback(request, exc)
        return await result if inspect.isawaitable(result) else result

    return handle


def install_openai_error_rendering(app: FastAPI) -> None:
    """Render errors on /v1/* in OpenAI's shape; other paths keep their handlers. Idempotent."""
    if getattr(app.state, "openai_error_rendering", False):
        return
    app.state.openai_error_rendering = True
    for exc_class in (CorralError, RequestValidationError, StarletteHTTPException, Exception):
        fallback = app.exception_handlers.get(exc_class) or _FASTAPI_DEFAULTS.get(exc_class)
        app.exception_handlers[exc_class] = _dispatch(fallback)
