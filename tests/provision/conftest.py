"""The registry tier's fixtures (a real docker-registry and smollm2 published to it), and a
``corral serve`` subprocess that is waited on until live, not until ready."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live import LiveServer, free_port
from tests.registry.conftest import published, registry

__all__ = ["published", "registry", "spawn_live"]


def spawn_live(home: Path, **env: str) -> tuple[LiveServer, float]:
    """Start ``corral serve``; return once /health/live answers, with the seconds it took."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / f"server-{port}.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "OLLAMA_"))},
        "CORRAL_HOME": str(home),
        "CORRAL_HOST": f"127.0.0.1:{port}",
        "CORRAL_NUM_THREADS": "2",
        **env,
    }
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "corral", "serve"], env=full_env, stdout=out, stderr=out
        )
    server = LiveServer(f"http://127.0.0.1:{port}", home, proc, log)
    deadline = started + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(server.url + "/health/live", timeout=1).status_code == 200:
                return server, time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    server.stop()
    raise AssertionError(f"never live: {log.read_text()[-3000:]}")
