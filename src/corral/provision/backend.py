"""Backends for the provisioner: the store, registry and model manager the server already has
(plus its service, for preloading), or ones built for ``corral provision`` without a server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.core.models import CreateRequest, ModelManager
from corral.core.registry import registry_service
from corral.errors import UnsupportedFeature
from corral.modelfile import parse_modelfile, render_modelfile
from corral.names import parse_name
from corral.registry import RegistryService
from corral.store.create import request_gguf
from corral.store.models import Store

if TYPE_CHECKING:
    from corral.config import Settings
    from corral.core.service import Service

__all__ = ["STATE_FILE", "ServerBackend", "StoreBackend", "offline_backend"]

STATE_FILE = "corral-provisioned.json"  # in the models directory: what provisioning created


class StoreBackend:
    """Pull and create straight into a store; no engines, so no preloading."""

    can_preload = False

    def __init__(self, store: Store, registry: RegistryService, models: ModelManager) -> None:
        self.store = store
        self.registry = registry
        self.models = models

    def manifest_digest(self, name: str) -> str | None:
        stored = self.store.manifests.get(parse_name(name))
        if stored is None:
            return None
        manifest = stored.manifest
        for layer in [manifest.config, *manifest.layers]:
            if not layer.digest:
                continue
            path = self.store.blobs.path(layer.digest)
            try:
                if path.stat().st_size != layer.size:
                    return None
            except OSError:
                return None
        return stored.digest

    async def pull(self, name: str, *, insecure: bool) -> AsyncIterator[dict[str, Any]]:
        async for line in self.registry.pull(name, insecure=insecure):
            yield line.model_dump(exclude_none=True)

    async def create(self, name: str, modelfile: str) -> AsyncIterator[dict[str, Any]]:
        """Local files (absolute paths, from the trusted provisioning file) are added as blobs
        first, like ``corral create`` uploads them: CORRAL_IMPORT_DIRS limits API clients."""
        mf = parse_modelfile(modelfile)
        mf.from_ = [await self._blob_ref(v) for v in mf.from_]
        mf.adapters = [await self._blob_ref(v) for v in mf.adapters]
        request = CreateRequest(model=name, modelfile=render_modelfile(mf))
        async for line in self.models.create(request):
            yield line.model_dump(exclude_none=True)

    async def _blob_ref(self, value: str) -> str:
        path = Path(value)
        if not path.is_absolute():
            return value  # a model name
        await asyncio.to_thread(request_gguf, path)
        return "@" + await asyncio.to_thread(self.store.blobs.import_file, path)

    async def preload(self, name: str) -> None:  # pragma: no cover - can_preload is False
        # The runner asks can_preload first and reports "preload skipped (no server)".
        raise UnsupportedFeature(
            f"{name}: preloading needs a running server; corral provision only pulls and creates"
        )


class ServerBackend(StoreBackend):
    """The server's own collaborators: preloading loads through the service, like an
    ``/api/generate`` with no prompt and ``keep_alive: -1`` (loaded until unloaded)."""

    can_preload = True

    def __init__(
        self, store: Store, registry: RegistryService, models: ModelManager, service: Service
    ) -> None:
        super().__init__(store, registry, models)
        self.service = service

    async def preload(self, name: str) -> None:
        from corral.core.service import collect_generate
        from corral.types import GenerateRequest

        await collect_generate(self.service.generate(GenerateRequest(model=name, keep_alive=-1)))


def offline_backend(settings: Settings) -> StoreBackend:
    """What ``corral provision`` uses: the store in ``settings``, no server needed."""
    store = Store(settings.models_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    models = ModelManager(store, noprune=settings.noprune, llama_server=settings.llama_server)
    registry = registry_service(settings, store, models)
    return StoreBackend(store, registry, models)
