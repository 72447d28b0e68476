"""The ``response.*`` SSE events of a streamed Responses API answer.

Text streams as ``response.output_text.delta``; reasoning and function calls are emitted
whole once the native stream ends (the runner hands tool calls on the last chunk).
The first native chunk is pulled before the status line so early errors get their code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from corral.api.openai.errors import openai_error
from corral.errors import EngineError
from corral.types import ChatResponse

__all__ = ["stream_response"]

_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def stream_response(
    stream: AsyncIterator[ChatResponse],
    skeleton: dict[str, Any],
    finish: Callable[[ChatResponse, str], dict[str, Any]],
) -> StreamingResponse:
    """``skeleton`` is the in-progress response; ``finish(final, text)`` the finished one."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        raise EngineError("no response from model") from None

    seq = 0

    def event(kind: str, **data: Any) -> bytes:
        nonlocal seq
        payload = {"type": kind, "sequence_number": seq, **data}
        seq += 1
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield event("response.created", response=skeleton)
        yield event("response.in_progress", response=skeleton)
        msg_id = "msg_" + skeleton["id"].removeprefix("resp_")
        item = {"type": "message", "id": msg_id, "status": "in_progress", "role": "assistant"}
        yield event("response.output_item.added", output_index=0, item={**item, "content": []})
        part = {"type": "output_text", "text": "", "annotations": []}
        where = {"item_id": msg_id, "output_index": 0, "content_index": 0}
        yield event("response.content_part.added", **where, part=part)
        text: list[str] = []
        final = first
        try:
            chunk: ChatResponse | None = first
            it = aiter(stream)
            while chunk is not None:
                final = chunk
                if chunk.message.content:
                    text.append(chunk.message.content)
                    yield event(
                        "response.output_text.delta",
                        **where,
                        delta=chunk.message.content,
                        logprobs=[],
                    )
                chunk = await anext(it, None)
        except Exception as exc:  # the status line is sent: say it in-band
            _, error = openai_error(exc)
            info = error["error"]
            # the error's own "type" (e.g. server_error) would clobber the event type
            yield event("error", message=info["message"], code=info.get("code"), param=None)
            yield event(
                "response.failed",
                response={**skeleton, "status": "failed", "error": error["error"]},
            )
            return
        done = finish(final, "".join(text))
        full = "".join(text)
        yield event("response.output_text.done", **where, text=full, logprobs=[])
        yield event("response.content_part.done", **where, part={**part, "text": full})
        message = next((o for o in done["output"] if o["type"] == "message"), None)
        yield event(
            "response.output_item.done",
            output_index=0,
            item=message or {**item, "status": "completed", "content": [{**part, "text": full}]},
        )
        calls = [o for o in done["output"] if o["type"] == "function_call"]
        for i, call in enumerate(calls, start=1):
            yield event(
                "response.output_item.added",
                output_index=i,
                item={**call, "arguments": "", "status": "in_progress"},
            )
            yield event(
                "response.function_call_arguments.delta",
                item_id=call["id"],
                output_index=i,
                delta=call["arguments"],
            )
            yield event(
                "response.function_call_arguments.done",
                item_id=call["id"],
                output_index=i,
                arguments=call["arguments"],
            )
            yield event("response.output_item.done", output_index=i, item=call)
        kind = "response.incomplete" if done["status"] == "incomplete" else "response.completed"
        yield event(kind, response=done)

    return StreamingResponse(body(), media_type="text/event-stream", headers=_HEADERS)
