"""How the Ollama surface renders errors: ``{"error": "..."}`` with Ollama's status codes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral.errors import CorralError

__all__ = ["describe_validation_error", "install_error_handlers"]

log = logging.getLogger(__name__)


def describe_validation_error(errors: list[Any]) -> str:
    """One sentence that names the field and says what to fix."""
    first = errors[0] if errors else {}
    kind = first.get("type", "")
    if kind == "json_invalid":
        ctx = first.get("ctx", {}).get("error", "")
        return f"invalid JSON in request body: {ctx}".rstrip(": ")
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc)
    if kind == "missing":
        if field == "model":
            return "model is required"
        return f'field "{field}" is required' if field else "request body is required"
    message = first.get("msg", "invalid value")
    if not field:
        return f"invalid request body: {message}"
    return f'invalid value for field "{field}": {message}'


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CorralError)
    async def _corral_error(_: Request, exc: CorralError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("%s: %s", type(exc).__name__, exc.message)
        return JSONResponse({"error": exc.message}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": describe_validation_error(list(exc.errors()))}, status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            detail = "404 page not found"
        elif exc.status_code == 405:
            detail = "405 method not allowed"
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"error": f"internal error: {exc}"}, status_code=500)
