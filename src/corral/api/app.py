"""The app factory: builds every collaborator once and hangs it on ``app.state``."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from corral import __version__
from corral.api import health, models, ollama, registry, system
from corral.api.anthropic import install_anthropic_error_rendering
from corral.api.anthropic import router as anthropic_router
from corral.api.content_type import JsonBodyMiddleware
from corral.api.errors import install_error_handlers
from corral.api.health import Readiness
from corral.api.metrics import Metrics, install_metrics
from corral.api.openai import install_openai_error_rendering
from corral.api.openai import router as openai_router
from corral.api.responses.routes import router as responses_router
from corral.api.responses.store import ResponseStore
from corral.api.security import install_security
from corral.config import Settings
from corral.core.catalog import Catalog
from corral.core.fit import estimate_memory
from corral.core.models import ModelManager
from corral.core.offload import LoadPlan, Offloader
from corral.core.registry import registry_service
from corral.core.scheduler import Scheduler
from corral.core.service import Service
from corral.core.speculative import Drafts
from corral.core.sysinfo import engine_gpus
from corral.errors import CorralError
from corral.hardware import GPUInfo, Hardware, MemoryProbe
from corral.provision import (
    STATE_FILE,
    Provisioner,
    ProvisionPlan,
    ServerBackend,
    load_plan,
    readiness_listener,
)
from corral.runner.discovery import find_llama_server
from corral.runner.protocol import EngineFactory, LoadSpec
from corral.runner.rpc import RpcWorkers
from corral.store.defaults import ensure_default_model
from corral.store.models import LocalModel, Store
from corral.web import WebUI, install_web

__all__ = ["create_app"]

log = logging.getLogger(__name__)


async def _prepare_store(settings: Settings, store: Store, readiness: Readiness) -> None:
    readiness.set_waiting("preparing the model store")
    store.root.mkdir(parents=True, exist_ok=True)
    if not settings.no_default_model:
        readiness.set_waiting("adding the default model", model="smollm2:135m")
        try:
            await asyncio.to_thread(ensure_default_model, store)
        except (OSError, CorralError) as exc:
            # A convenience, not a requirement: a full or read-only disk must not keep the
            # server (and the models already there) from starting.
            log.error("the default model could not be added to %s: %s", store.root, exc)
    readiness.set_ready()


def _engine_factory(settings: Settings) -> EngineFactory:
    from corral.runner.engine import engine_factory  # the runner loads only when serving

    return engine_factory(settings)


def _provisioner(
    settings: Settings, plan: ProvisionPlan, app: FastAPI, readiness: Readiness
) -> Provisioner | None:
    if not plan:
        return None
    state = app.state
    backend = ServerBackend(state.store, state.registry, state.models, state.service)
    return Provisioner(
        plan,
        backend,
        state_file=settings.models_dir / STATE_FILE,
        listener=readiness_listener(readiness),
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    memory: MemoryProbe | None = None,
    hardware: Hardware | None = None,
) -> FastAPI:
    """The whole server; tests inject a fake engine factory, memory probe and hardware.

    An injected ``hardware``'s GPUs are taken as usable by the engine; without one, only the
    GPUs the engine build can drive (its ``--list-devices``) take offloaded layers.
    """
    settings = settings or Settings()
    if hardware is None:
        hardware = Hardware(memory=memory) if memory else Hardware()
        gpus = engine_gpus(hardware, settings)
    else:
        gpus = hardware.gpus
    memory = memory or hardware.memory
    store = Store(settings.models_dir)
    catalog = Catalog()
    metrics = Metrics()  # this app's own Prometheus registry, fed through the observer hooks

    drafts = Drafts(store, catalog, settings.speculative)  # speculative decoding's drafts
    # CORRAL_PROVISION / CORRAL_PULL, checked here: a bad file fails the start-up
    provision = load_plan(settings.provision, settings.pull)
    # the RPC workers: CORRAL_RPC_WORKERS and the provisioning file's rpc_workers
    endpoints = list(dict.fromkeys([*settings.rpc_workers, *provision.rpc_workers]))
    workers = RpcWorkers(endpoints, lambda: find_llama_server(settings.llama_server))
    local_gpus = gpus

    def devices() -> list[GPUInfo]:
        """RPC workers (the engine lists them first) and local GPUs; a worker serves one
        engine at a time, so those our loaded engines hold are left out."""
        busy = {e for m in scheduler.running() for e in m.engine.spec.rpc_workers}
        return workers.devices(busy) + local_gpus()

    if endpoints:
        gpus = devices
    offloader = Offloader(gpus, catalog.gguf, overhead=settings.gpu_overhead)

    def draft_bytes(spec: LoadSpec) -> int:
        draft = drafts.memory(spec)
        return draft.total if draft else 0

    def estimate(model: LocalModel, spec: LoadSpec) -> int:
        size = model.model_path.stat().st_size
        return estimate_memory(catalog.gguf(model), size, spec).total + draft_bytes(spec)

    def plan(model: LocalModel, spec: LoadSpec) -> LoadPlan:
        planned = offloader.plan(model, spec)  # a draft is counted in RAM, where it may go
        return dataclasses.replace(planned, ram=planned.ram + draft_bytes(spec))

    scheduler = Scheduler(
        engine_factory or _engine_factory(settings),
        max_loaded=settings.max_loaded_models,
        max_queue=settings.max_queue,
        memory=memory,
        estimate=estimate,
        plan=plan,
        observer=metrics,
    )
    metrics.watch_scheduler(scheduler)
    readiness = Readiness()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _prepare_store(settings, store, readiness)
        watcher = asyncio.create_task(scheduler.watch())
        provisioner: Provisioner | None = app.state.provisioner
        # Live at once; ready (the listener's call) once the required models are there.
        provisioning = None
        if provisioner is not None:
            provisioner.notify()  # not ready from the first request on
            provisioning = asyncio.create_task(provisioner.run())
        try:
            yield
        finally:
            if provisioning is not None:
                provisioning.cancel()  # a pull stops; its partial files stay for a resume
            watcher.cancel()
            await scheduler.shutdown()

    app = FastAPI(title="corral", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.scheduler = scheduler
    app.state.responses = ResponseStore(settings.home.expanduser() / "responses")  # Responses API
    app.state.service = Service(
        settings, store, scheduler, catalog, observer=metrics, drafts=drafts
    )
    app.state.models = ModelManager(
        store,
        noprune=settings.noprune,
        llama_server=settings.llama_server,
        import_dirs=settings.import_dirs,
    )
    app.state.readiness = readiness
    app.state.registry = registry_service(settings, store, app.state.models, metrics)
    app.state.provisioner = _provisioner(settings, provision, app, readiness)
    app.state.system = system.System(
        settings, store, catalog, hardware, gpus, app.state.registry, drafts=drafts
    )
    catalog.fit = app.state.system.show_fit  # /api/show's "fit"
    web = WebUI.create(settings)  # the browser UI's database, accounts, chats, keys
    # host check, CORS, API keys (configured ones, the web UI's, browser sessions), body limits
    app.add_middleware(JsonBodyMiddleware)  # curl -d bodies are JSON too, as in Ollama
    install_security(app, settings, extra_keys=web.keys, browser=web.browser_scope)
    install_error_handlers(app)
    install_openai_error_rendering(app)  # after: it routes /v1/* errors to OpenAI's shape
    install_anthropic_error_rendering(app)  # after that: /v1/messages* in Anthropic's shape
    app.include_router(health.router)
    app.include_router(ollama.router)
    app.include_router(models.router)
    app.include_router(registry.router)
    app.include_router(system.router)  # /api/info, /api/fit
    app.include_router(anthropic_router)
    app.include_router(openai_router)
    app.include_router(responses_router)  # /v1/responses
    install_web(app, web)  # /ui/ and /ui/api/*
    install_metrics(app, metrics)  # /metrics, and the outermost middleware: counts every request
    return app
