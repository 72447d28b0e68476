"""The status objects ``/api/pull`` and ``/api/push`` stream (Ollama's ``ProgressResponse``)."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["Progress"]


class Progress(BaseModel):
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None
