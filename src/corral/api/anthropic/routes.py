"""Anthropic's Messages API: thin routes over the one native pipeline.

Each route converts the request to the native chat request (``convert``), runs it through
the service from ``app.state``, and converts the answer back (``answers``).
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.anthropic import answers, convert
from corral.api.anthropic.errors import anthropic_error
from corral.api.anthropic.protocol import (
    CountTokensRequest,
    Message,
    MessagesRequest,
    TokenCount,
)
from corral.api.openai.sse import stream_events
from corral.core.service import collect_chat

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/messages", tags=["anthropic"])


def _sse(event: answers.Event) -> bytes:
    name, data = event
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _error_event(exc: Exception) -> bytes:
    status, error = anthropic_error(exc)
    log.warning("stream ended with an error (%d): %s", status, error["error"]["message"])
    return _sse(("error", error))


@router.post("", response_model=Message)
async def create_message(body: MessagesRequest, request: Request) -> Response:
    stream = request.app.state.service.chat(convert.chat_request(body))
    ident = answers.new_id("msg")
    omit = body.thinking is not None and body.thinking.omitted
    if body.stream:
        events = answers.MessageEvents(id=ident, model=body.model, omit_thinking=omit)
        return await stream_events(
            stream, events.convert, list, encode=_sse, error_event=_error_event, tail=b""
        )
    result = await collect_chat(stream)
    message = answers.message(result, id=ident, model=body.model, omit_thinking=omit)
    return Response(message.model_dump_json(), media_type="application/json")


@router.post("/count_tokens", response_model=TokenCount)
async def count_tokens(body: CountTokensRequest, request: Request) -> Response:
    count = await request.app.state.service.count_tokens(convert.count_request(body))
    return Response(TokenCount(input_tokens=count).model_dump_json(), media_type="application/json")
