"""Ollama's response styles: NDJSON lines by default, one JSON object with ``stream: false``.

The first chunk is pulled before the response starts, so errors that happen before any
output (unknown model, engine that cannot load) get their real status code; errors after
it become an ``{"error": ...}`` line, which the official clients raise as ResponseError.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from corral.errors import CorralError

__all__ = ["last_status", "respond"]

log = logging.getLogger(__name__)

Chunk = TypeVar("Chunk", bound=BaseModel)
NDJSON = "application/x-ndjson"


def _line(chunk: BaseModel) -> bytes:
    return chunk.model_dump_json(exclude_none=True).encode() + b"\n"


async def respond(
    stream: AsyncIterator[Chunk],
    *,
    streaming: bool,
    collect: Callable[[AsyncIterator[Chunk]], Awaitable[Chunk]],
) -> Response:
    if not streaming:
        result = await collect(stream)
        return Response(result.model_dump_json(exclude_none=True), media_type="application/json")
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        return JSONResponse({"error": "no response from model"}, status_code=500)

    async def body() -> AsyncIterator[bytes]:
        yield _line(first)
        try:
            async for chunk in stream:
                yield _line(chunk)
        except CorralError as exc:
            log.warning("stream ended with an error: %s", exc.message)
            yield json.dumps({"error": exc.message}).encode() + b"\n"
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(body(), media_type=NDJSON)


async def last_status(stream: AsyncIterator[Chunk]) -> Chunk:
    """``stream: false`` for progress streams (create, pull, push): the final status
    (``success``); an error raised on the way keeps its status code."""
    last: Chunk | None = None
    async for status in stream:
        last = status
    assert last is not None, "a progress stream always ends with success or an error"
    return last
