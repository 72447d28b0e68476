"""This machine and whether a model fits it: ``GET /api/info`` and ``POST /api/fit``.

Not in Ollama's API (corral's own, like ``corral info`` and ``corral fit`` that call them):

- ``GET /api/info`` -> ``{"version", "hardware": {"cpu", "memory", "gpus"}, "engine": {"path",
  "version", "backends", "devices"}, "store": {"path", "free", "total"}, "settings"}``;
- ``POST /api/fit`` ``{"model", "num_ctx"?, "num_parallel"?, "num_gpu"?, "insecure"?}`` ->
  the estimate (weights, KV cache, compute buffer), the layers that would go to the GPUs,
  VRAM and RAM needed against what is free, and a verdict (see
  :meth:`corral.core.fitreport.FitReport.to_dict`). A model not in the store is looked up
  in its registry: the manifest, then ranged reads of the blob's GGUF header, no download.

``/api/show`` carries the same report for the model's own defaults in its ``fit`` field.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from corral.config import Settings
from corral.core.catalog import Catalog
from corral.core.fitreport import FitReport, assess_fit
from corral.core.options import held_num_ctx, load_spec
from corral.core.speculative import Drafts
from corral.core.sysinfo import machine_info
from corral.errors import (
    CorralError,
    InvalidOption,
    ManifestUnknown,
    ModelNotFound,
    RegistryError,
    UnsupportedFeature,
)
from corral.hardware import GPUProbe, Hardware
from corral.names import parse_name
from corral.registry import RegistryService
from corral.registry.header import read_remote_header
from corral.registry.sources import SourceKind, source_kind
from corral.runner.protocol import LoadSpec
from corral.store.models import LocalModel, Store
from corral.types import ModelRequest

__all__ = ["FitRequest", "NotFoundAnywhere", "System", "router"]

router = APIRouter()


class NotFoundAnywhere(ModelNotFound):
    """Neither in the store nor in its registry (so "try pulling it" would not help), or
    not in the store and its registry could not be asked (the reason is added)."""

    def __init__(self, name: str, reason: str = "") -> None:
        message = f'model "{name}" not found locally or in its registry'
        if reason:
            message = f'model "{name}" not found locally, and its registry failed: {reason}'
        CorralError.__init__(self, message)
        self.name = name


class FitRequest(ModelRequest):
    num_ctx: int | None = Field(None, ge=16, description="context per slot (default: the model's)")
    num_parallel: int | None = Field(None, ge=1, description="parallel request slots")
    num_gpu: int | None = Field(None, description="layers to offload (default: as many as fit)")
    insecure: bool = Field(False, description="allow a plain-HTTP registry")


class System:
    """Built once by the app factory (``app.state.system``)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        catalog: Catalog,
        hardware: Hardware,
        gpus: GPUProbe,
        registry: RegistryService,
        drafts: Drafts | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.hardware = hardware
        self.gpus = gpus  # the GPUs the engine can use
        self.registry = registry
        self.drafts = drafts or Drafts(store, catalog, settings.speculative)

    def _overrides(self, body: FitRequest | None) -> dict[str, Any]:
        if body is None:
            return {}
        if body.num_ctx is not None and body.num_ctx > self.settings.max_num_ctx:
            raise InvalidOption(
                f"num_ctx {body.num_ctx} is over this server's limit of {self.settings.max_num_ctx}"
            )
        fields = {"num_ctx": body.num_ctx, "num_parallel": body.num_parallel}
        fields["num_gpu"] = body.num_gpu
        return {k: v for k, v in fields.items() if v is not None}

    def local(self, model: LocalModel, body: FitRequest | None = None) -> FitReport:
        """The report for a model in the store, with its own parameters as defaults."""
        options = {**model.params, **self._overrides(body)}
        speculation = self.drafts.resolve(model, options)
        spec = load_spec(
            model,
            options,
            self.settings,
            speculation=speculation,
            context_limit=self.catalog.gguf(model).context_length,
        )
        return assess_fit(
            self.catalog.gguf(model),
            model.model_path.stat().st_size,
            spec,
            gpus=self.gpus(),
            memory=self.hardware.memory(),
            overhead=self.settings.gpu_overhead,
            model=model.name.display,
            draft=self.drafts.memory(spec),
            draft_name=speculation.draft.name.display if speculation and speculation.draft else "",
        )

    async def remote(self, body: FitRequest) -> FitReport:
        name = parse_name(body.model_name)
        if source_kind(name) is SourceKind.HUGGINGFACE:
            raise UnsupportedFeature(
                f"{name.display}: corral fit reads OCI registries; pull Hugging Face models first"
            )
        client = self.registry.client_factory(name, insecure=body.insecure)()
        try:
            found = await read_remote_header(client)
        except ManifestUnknown as exc:
            raise NotFoundAnywhere(body.model_name) from exc
        except RegistryError as exc:  # unreachable, refused, or a manifest we cannot use
            raise NotFoundAnywhere(body.model_name, exc.message) from exc
        finally:
            await client.aclose()
        overrides = self._overrides(body)
        num_ctx = int(overrides.get("num_ctx") or self.settings.context_length)
        limit = found.info.context_length
        spec = LoadSpec(
            model_path=Path(name.display),
            num_ctx=held_num_ctx(num_ctx, limit),
            context_limit=limit,
            num_parallel=int(overrides.get("num_parallel") or self.settings.num_parallel),
            num_gpu=overrides.get("num_gpu"),
            label=name.display,
        )
        gpus, memory = await asyncio.to_thread(lambda: (self.gpus(), self.hardware.memory()))
        return assess_fit(
            found.info,
            found.layer.size,
            spec,
            gpus=gpus,
            memory=memory,
            overhead=self.settings.gpu_overhead,
            model=name.display,
            source="registry",
        )

    async def fit(self, body: FitRequest) -> FitReport:
        try:
            model = self.store.get(body.model_name)
        except ModelNotFound:
            return await self.remote(body)
        return await asyncio.to_thread(self.local, model, body)

    def show_fit(self, model: LocalModel) -> dict[str, Any]:
        """The ``fit`` field of ``/api/show``."""
        try:
            return self.local(model).to_dict()
        except CorralError as exc:  # e.g. a header the estimate cannot use
            return {"error": exc.message}

    async def info(self) -> dict[str, Any]:
        return await asyncio.to_thread(machine_info, self.settings, self.hardware)


def _system(request: Request) -> System:
    system: System = request.app.state.system
    return system


@router.get("/api/info")
async def info(request: Request) -> dict[str, Any]:
    return await _system(request).info()


@router.post("/api/fit")
async def fit(body: FitRequest, request: Request) -> dict[str, Any]:
    if not body.model_name:
        raise InvalidOption("model is required")
    report = await _system(request).fit(body)
    return report.to_dict()
