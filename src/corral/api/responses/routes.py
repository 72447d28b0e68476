"""The Responses API on /v1/responses: thin routes over ``app.state.service``."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from corral.api.openai.errors import InvalidParameter
from corral.api.responses import answers, convert
from corral.api.responses.protocol import InputItem, ResponseRequest
from corral.api.responses.sse import stream_response
from corral.api.responses.store import ResponseStore
from corral.core.service import collect_chat
from corral.types import ChatResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["responses"])


def _store(request: Request) -> ResponseStore:
    store: ResponseStore = request.app.state.responses
    return store


def _not_found(response_id: str) -> JSONResponse:
    body = {
        "message": f"No response found with id '{response_id}'.",
        "type": "invalid_request_error",
        "param": "response_id",
        "code": "not_found",
    }
    return JSONResponse({"error": body}, status_code=404)


@router.post("/responses")
async def create_response(body: ResponseRequest, request: Request) -> Response:
    history: list[InputItem] = []
    if body.previous_response_id:
        prev = _store(request).get(body.previous_response_id)
        if prev is None:
            return _not_found(body.previous_response_id)
        items = [*prev["_input"], *prev["output"]]
        try:
            history = [InputItem.model_validate(i) for i in items if i["type"] != "reasoning"]
        except (KeyError, ValueError) as exc:
            raise InvalidParameter(
                "previous_response_id", "the stored response is unreadable"
            ) from exc
    native = convert.chat_request(body, history)
    stream = request.app.state.service.chat(native)
    ident = answers.new_id("resp")
    extra: dict[str, Any] = {
        "instructions": body.instructions,
        "metadata": body.metadata or {},
        "previous_response_id": body.previous_response_id,
        "max_output_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "store": body.store,
    }

    def finish(final: ChatResponse) -> dict[str, Any]:
        obj = answers.response_object(ident, body.model, final, extra)
        if body.store:
            own = [i.model_dump(exclude_none=True) for i in convert.input_items(body)]
            past = [h.model_dump(exclude_none=True) for h in history]
            _store(request).put(ident, {**obj, "_input": [*past, *own]})
        return obj

    if body.stream:
        skeleton = {
            **extra,
            "id": ident,
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "model": body.model,
            "output": [],
            "usage": None,
        }

        def streamed(final: ChatResponse, text: str) -> dict[str, Any]:
            whole = final.model_copy(
                update={"message": final.message.model_copy(update={"content": text})}
            )
            return finish(whole)

        return await stream_response(stream, skeleton, streamed)
    return JSONResponse(finish(await collect_chat(stream)))


@router.get("/responses/{response_id}")
async def get_response(response_id: str, request: Request) -> JSONResponse:
    record = _store(request).get(response_id)
    if record is None:
        return _not_found(response_id)
    record.pop("_input", None)
    return JSONResponse(record)


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    request: Request,
    order: Literal["asc", "desc"] = "desc",
    limit: int = Query(20, ge=1, le=100),
    after: str | None = None,
) -> JSONResponse:
    """What the model read for a response: the history it continued, then its own input."""
    record = _store(request).get(response_id)
    if record is None:
        return _not_found(response_id)
    items = [
        {"id": f"{response_id}_in{index}", **item} for index, item in enumerate(record["_input"])
    ]
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise InvalidParameter("after", f"no input item '{after}' in response {response_id}")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return JSONResponse(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, request: Request) -> JSONResponse:
    if not _store(request).delete(response_id):
        return _not_found(response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})
