"""Liveness and readiness probes (DESIGN.md section 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

__all__ = ["Readiness", "router"]

router = APIRouter()


@dataclass
class Readiness:
    """Ready once start-up work (store, default model, provisioning) is done."""

    ready: bool = False
    reason: str = "starting"
    detail: dict[str, Any] = field(default_factory=dict)

    def set_ready(self) -> None:
        self.ready, self.reason, self.detail = True, "ready", {}

    def set_waiting(self, reason: str, **detail: Any) -> None:
        self.ready, self.reason, self.detail = False, reason, detail


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "live"}


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    state: Readiness = request.app.state.readiness
    if state.ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "not ready", "reason": state.reason, **state.detail}, status_code=503
    )
