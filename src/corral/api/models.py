"""Ollama's model-management routes: create, copy, delete and blob uploads.

Thin: each takes the :class:`~corral.core.models.ModelManager` from ``app.state.models`` and
lets the app's handlers render the typed errors (``{"error": ...}`` with Ollama's codes).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.streaming import last_status, respond
from corral.core.models import CopyRequest, CreateRequest, ModelManager
from corral.types import ModelRequest

__all__ = ["router"]

router = APIRouter()


def _models(request: Request) -> ModelManager:
    models: ModelManager = request.app.state.models
    return models


@router.post("/api/create")
async def create(body: CreateRequest, request: Request) -> Response:
    stream = _models(request).create(body)
    return await respond(stream, streaming=body.stream is not False, collect=last_status)


@router.post("/api/copy")
async def copy(body: CopyRequest, request: Request) -> Response:
    await _models(request).copy(body.source, body.destination)
    return Response(status_code=200)


@router.delete("/api/delete")
async def delete(body: ModelRequest, request: Request) -> Response:
    await _models(request).delete(body.model_name)
    return Response(status_code=200)


@router.head("/api/blobs/{digest}")
async def blob_exists(digest: str, request: Request) -> Response:
    return Response(status_code=200 if _models(request).blob_exists(digest) else 404)


@router.post("/api/blobs/{digest}")
async def upload_blob(digest: str, request: Request) -> Response:
    created = await _models(request).store_blob(digest, request.stream())
    return Response(status_code=201 if created else 200)
