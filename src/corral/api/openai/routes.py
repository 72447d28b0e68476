"""OpenAI's API on /v1: thin routes over the one native pipeline.

Each route converts the request to the native type (``convert``), runs it through the
service from ``app.state``, and converts the answer back (``responses``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from corral.api.openai import convert, responses
from corral.api.openai.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    CreateEmbeddingResponse,
    EmbeddingRequest,
    Model,
    ModelList,
)
from corral.api.openai.sse import stream_events
from corral.core.service import collect_chat, collect_generate
from corral.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
)

__all__ = ["Backend", "router"]

router = APIRouter(prefix="/v1", tags=["openai"])


class Backend(Protocol):
    """What these routes need of ``corral.core.service.Service``."""

    def list_models(self) -> list[dict[str, Any]]: ...

    def chat(self, request: ChatRequest) -> AsyncIterator[ChatResponse]: ...

    def generate(self, request: GenerateRequest) -> AsyncIterator[GenerateResponse]: ...

    async def embed(self, request: EmbedRequest) -> EmbedResponse: ...


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.service
    return backend


def _json(body: BaseModel) -> Response:
    return Response(body.model_dump_json(), media_type="application/json")


@router.post("/chat/completions", response_model=ChatCompletion)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    native = convert.chat_request(body)
    stream = _backend(request).chat(native)
    ident, created = responses.new_id("chatcmpl"), int(time.time())
    if not body.stream:
        result = await collect_chat(stream)
        return _json(responses.chat_completion(result, id=ident, created=created))
    chunks = responses.ChatChunks(
        id=ident,
        created=created,
        model=body.model,
        include_usage=convert.include_usage(body.stream_options),
    )
    return await stream_events(stream, chunks.convert, chunks.finish)


@router.post("/completions", response_model=Completion)
async def completions(body: CompletionRequest, request: Request) -> Response:
    native = convert.completion_request(body)
    stream = _backend(request).generate(native)
    ident, created = responses.new_id("cmpl"), int(time.time())
    if not body.stream:
        result = await collect_generate(stream)
        return _json(responses.completion(result, id=ident, created=created))
    chunks = responses.CompletionChunks(
        id=ident,
        created=created,
        model=body.model,
        include_usage=convert.include_usage(body.stream_options),
    )
    return await stream_events(stream, chunks.convert, chunks.finish)


@router.post("/embeddings", response_model=CreateEmbeddingResponse)
async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
    result = await _backend(request).embed(convert.embed_request(body))
    return _json(responses.embedding_response(result, encoding_format=body.encoding_format))


@router.get("/models", response_model=ModelList)
async def list_models(request: Request) -> Response:
    return _json(responses.model_list(_backend(request).list_models()))


@router.get("/models/{model_id:path}", response_model=Model)
async def retrieve_model(model_id: str, request: Request) -> Response:
    return _json(responses.find_model(_backend(request).list_models(), model_id))
