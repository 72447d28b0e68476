"""Ollama's API on /api/* and /: thin routes that take the service from ``app.state``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from corral import __version__
from corral.api.streaming import respond
from corral.core.service import Service, collect_chat, collect_generate
from corral.types import (
    ChatRequest,
    EmbeddingsRequest,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    ShowRequest,
)

__all__ = ["router"]

router = APIRouter()


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.get("/", response_class=PlainTextResponse)
async def root() -> str:
    return "corral is running"


@router.head("/", response_class=PlainTextResponse, include_in_schema=False)
async def root_head() -> str:
    return "corral is running"


@router.get("/api/version")
async def version() -> dict[str, str]:
    return {"version": __version__}


@router.get("/api/tags")
async def tags(request: Request) -> dict[str, Any]:
    return {"models": _service(request).list_models()}


@router.get("/api/ps")
async def ps(request: Request) -> dict[str, Any]:
    return {"models": _service(request).running()}


@router.post("/api/show")
async def show(body: ShowRequest, request: Request) -> dict[str, Any]:
    return _service(request).show(body.model_name, body.verbose)


@router.post("/api/chat")
async def chat(body: ChatRequest, request: Request) -> Response:
    stream = _service(request).chat(body)
    return await respond(stream, streaming=body.stream is not False, collect=collect_chat)


@router.post("/api/generate")
async def generate(body: GenerateRequest, request: Request) -> Response:
    stream = _service(request).generate(body)
    return await respond(stream, streaming=body.stream is not False, collect=collect_generate)


@router.post("/api/embed", response_model_exclude_none=True)
async def embed(body: EmbedRequest, request: Request) -> EmbedResponse:
    return await _service(request).embed(body)


@router.post("/api/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request) -> dict[str, list[float]]:
    """The legacy endpoint: one prompt in, one vector out."""
    result = await _service(request).embed(
        EmbedRequest(
            model=body.model, input=body.prompt, options=body.options, keep_alive=body.keep_alive
        )
    )
    return {"embedding": result.embeddings[0] if result.embeddings else []}
