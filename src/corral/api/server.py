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
    app = create_app(settings)
    # uvicorn turns SIGINT/SIGTERM into a graceful shutdown whose lifespan stops the engines;
    # the runner's atexit hook and PR_SET_PDEATHSIG cover every other way out.
    address = settings.address
    logging.getLogger(__name__).info(
        "corral listening on %s, models in %s", address.url, settings.models_dir
    )
    uvicorn.run(
        app,
        host=address.host,
        port=address.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.shutdown_grace),
    )
