"""Server-sent events for /v1 streams: ``data: {json}`` per chunk, then ``data: [DONE]``.

The first native chunk is pulled before the response starts, so an error before any output
(unknown model, tools on a model without them, an engine that cannot load) gets its real
status code through the app's handlers. Later errors can only be reported in-band: an
``data: {"error": {...}}`` event, which the ``openai`` SDK raises as ``APIError``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from corral.api.openai.errors import openai_error
from corral.errors import EngineError

__all__ = ["stream_events"]

log = logging.getLogger(__name__)

Native = TypeVar("Native")
Out = TypeVar("Out")
DONE = b"data: [DONE]\n\n"
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _event(chunk: BaseModel) -> bytes:
    return b"data: " + chunk.model_dump_json().encode() + b"\n\n"


def _openai_error_event(exc: Exception) -> bytes:
    status, error = openai_error(exc)
    log.warning("stream ended with an error (%d): %s", status, error["error"]["message"])
    return b"data: " + json.dumps(error).encode() + b"\n\n"


async def stream_events(
    stream: AsyncIterator[Native],
    convert: Callable[[Native], Sequence[Out]],
    finish: Callable[[], Sequence[Out]],
    *,
    encode: Callable[[Out], bytes] = _event,  # type: ignore[assignment]
    error_event: Callable[[Exception], bytes] = _openai_error_event,
    tail: bytes = DONE,
) -> StreamingResponse:
    """``convert`` maps each native chunk to its events; ``finish`` adds the last ones.
    ``encode``, ``error_event`` and ``tail`` frame them (OpenAI's by default; Anthropic's
    Messages API names its events)."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        raise EngineError("no response from model") from None

    async def body() -> AsyncIterator[bytes]:
        try:
            try:
                for chunk in convert(first):
                    yield encode(chunk)
                async for native in stream:
                    for chunk in convert(native):
                        yield encode(chunk)
                for chunk in finish():
                    yield encode(chunk)
            except Exception as exc:  # the status line is sent: say it in-band
                yield error_event(exc)
            if tail:
                yield tail
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(body(), media_type="text/event-stream", headers=_HEADERS)
