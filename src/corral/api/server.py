"""``corral serve``: uvicorn with one worker, engines stopped however the process ends."""

from __future__ import annotations

import logging

import uvicorn

from corral.api.app import create_app
from corral.config import Settings

__all__ = ["run_server"]


def run_server(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.log_level.lower() != "debug":
        # httpx logs every request at INFO: the engine start-up probe alone polls every 50 ms.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if settings.replicas:  # a router in front of other corral servers, no models of its own
        from corral.router.app import create_router_app

        app = create_router_app(settings)
    else:
        app = create_app(settings)
    # uvicorn turns SIGINT/SIGTERM into a graceful shutdown whose lifespan stops the engines;
    # the runner's atexit hook and PR_SET_PDEATHSIG cover every other way out.
    address = settings.address
    what = (
        f"routing to {', '.join(settings.replicas)}"
        if settings.replicas
        else (f"models in {settings.models_dir}")
    )
    logging.getLogger(__name__).info("corral listening on %s, %s", address.url, what)
    uvicorn.run(
        app,
        host=address.host,
        port=address.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.shutdown_grace),
    )
