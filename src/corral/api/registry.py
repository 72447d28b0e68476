"""``POST /api/pull`` and ``POST /api/push``: Ollama's streaming status objects.

Thin: the :class:`~corral.registry.RegistryService` on ``app.state.registry`` does the work.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from corral.api.streaming import last_status, respond
from corral.errors import BadRequest
from corral.registry import RegistryService
from corral.types import ModelRequest

__all__ = ["RegistryRequest", "router"]

router = APIRouter()


class RegistryRequest(ModelRequest):
    """Ollama's pull/push body."""

    insecure: bool = False
    stream: bool | None = None

    @property
    def model_name(self) -> str:
        value = super().model_name
        if not value:
            raise BadRequest("model is required")
        return value


def _registry(request: Request) -> RegistryService:
    registry: RegistryService = request.app.state.registry
    return registry


@router.post("/api/pull")
async def pull(body: RegistryRequest, request: Request) -> Response:
    stream = _registry(request).pull(body.model_name, insecure=body.insecure)
    return await respond(stream, streaming=body.stream is not False, collect=last_status)


@router.post("/api/push")
async def push(body: RegistryRequest, request: Request) -> Response:
    stream = _registry(request).push(body.model_name, insecure=body.insecure)
    return await respond(stream, streaming=body.stream is not False, collect=last_status)
