"""The app factory: builds every collaborator once and hangs it on ``app.state``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from corral import __version__
from corral.api import health, models, ollama, registry
from corral.api.errors import install_error_handlers
from corral.api.health import Readiness
from corral.api.openai import install_openai_error_rendering
from corral.api.openai import router as openai_router
from corral.api.security import install_security
from corral.config import Settings
from corral.core.catalog import Catalog
from corral.core.fit import estimate_memory
from corral.core.models import ModelManager
from corral.core.scheduler import Scheduler
from corral.core.service import Service
from corral.hardware import MemoryProbe, read_memory
from corral.registry import CredentialStore, RegistryService
from corral.runner.protocol import EngineFactory, LoadSpec
from corral.store.defaults import ensure_default_model
from corral.store.models import LocalModel, Store

__all__ = ["create_app"]

log = logging.getLogger(__name__)


async def _prepare_store(settings: Settings, store: Store, readiness: Readiness) -> None:
    readiness.set_waiting("preparing the model store")
    store.root.mkdir(parents=True, exist_ok=True)
    if not settings.no_default_model:
        readiness.set_waiting("adding the default model", model="smollm2:135m")
        await asyncio.to_thread(ensure_default_model, store)
    readiness.set_ready()


def _engine_factory(settings: Settings) -> EngineFactory:
    from corral.runner.engine import engine_factory  # the runner loads only when serving

    return engine_factory(settings)


def _registry_service(settings: Settings, store: Store, models: ModelManager) -> RegistryService:
    """Pulls share the model manager's lock (manifest writes vs pruning) and keep the blobs
    its creates hold."""
    return RegistryService(
        store,
        CredentialStore(settings.home / "credentials.json"),
        noprune=settings.noprune,
        lock=models.store_lock,
        held=models.held_digests,
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    memory: MemoryProbe | None = None,
) -> FastAPI:
    """The whole server; tests inject a fake engine factory and memory probe."""
    settings = settings or Settings()
    store = Store(settings.models_dir)
    catalog = Catalog()

    def estimate(model: LocalModel, spec: LoadSpec) -> int:
        return estimate_memory(catalog.gguf(model), model.model_path.stat().st_size, spec).total

    scheduler = Scheduler(
        engine_factory or _engine_factory(settings),
        max_loaded=settings.max_loaded_models,
        max_queue=settings.max_queue,
        memory=memory or read_memory,
        estimate=estimate,
    )
    readiness = Readiness()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _prepare_store(settings, store, readiness)
        watcher = asyncio.create_task(scheduler.watch())
        try:
            yield
        finally:
            watcher.cancel()
            await scheduler.shutdown()

    app = FastAPI(title="corral", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.scheduler = scheduler
    app.state.service = Service(settings, store, scheduler, catalog)
    app.state.models = ModelManager(
        store, noprune=settings.noprune, llama_server=settings.llama_server
    )
    app.state.readiness = readiness
    app.state.registry = _registry_service(settings, store, app.state.models)
    install_security(app, settings)  # host check, CORS, API keys, body limits
    install_error_handlers(app)
    install_openai_error_rendering(app)  # after: it routes /v1/* errors to OpenAI's shape
    app.include_router(health.router)
    app.include_router(ollama.router)
    app.include_router(models.router)
    app.include_router(registry.router)
    app.include_router(openai_router)
    return app
