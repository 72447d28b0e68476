"""What ``corral info`` prints (``GET /api/info``): the machine, the engine, the store and
the effective settings, as one JSON-ready dict.

Also which GPUs the engine can actually use: a CPU-only llama-server build offloads nothing
however many GPUs the machine has, so automatic offload only counts GPUs whose backend
(CUDA, ROCm; Vulkan drives both) the engine lists in ``--list-devices``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral import __version__
from corral.config import Settings
from corral.errors import EngineNotFound
from corral.hardware import GPUInfo, Hardware
from corral.hardware.cpu import read_cpu
from corral.runner.compat import COMPAT_FILE, EngineCompat, cpu_fingerprint
from corral.runner.devices import device_backends, engine_cpu_features, engine_info
from corral.runner.discovery import find_llama_server

__all__ = ["engine_gpus", "machine_info"]


def engine_gpus(hardware: Hardware, settings: Settings) -> Callable[[], list[GPUInfo]]:
    """The machine's GPUs that the configured engine build can offload to."""

    def probe() -> list[GPUInfo]:
        gpus = hardware.gpus()
        if not gpus:
            return []  # no GPU: no need to ask the engine
        try:
            backends = device_backends(find_llama_server(settings.llama_server))
        except EngineNotFound:
            return []
        return [g for g in gpus if g.backend in backends or "vulkan" in backends]

    return probe


def _disk(path: Path) -> dict[str, Any]:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # a fresh store: report the disk it will be created on
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        return {"path": str(path), "free": None, "total": None}
    return {"path": str(path), "free": usage.free, "total": usage.total}


def _engine(settings: Settings) -> dict[str, Any]:
    try:
        path = find_llama_server(settings.llama_server)
    except EngineNotFound as exc:
        return {"path": None, "error": exc.message}
    info = engine_info(path)
    compat = EngineCompat(settings.home.expanduser() / COMPAT_FILE, cpu_fingerprint(read_cpu()))
    return {
        "path": str(info.path),
        "version": info.version,
        "backends": list(info.backends),
        "devices": [
            {"id": d.id, "name": d.name, "total": d.total, "free": d.free} for d in info.devices
        ],
        "cpu_features": engine_cpu_features(path),
        "fallback": compat.describe(path),
    }


def machine_info(settings: Settings, hardware: Hardware) -> dict[str, Any]:
    """Everything ``corral info`` shows. Starts the engine binary twice (``--version``,
    ``--list-devices``): call it off the event loop."""
    return {
        "version": __version__,
        "hardware": hardware.inventory().to_dict(),
        "engine": _engine(settings),
        "store": _disk(settings.models_dir),
        "settings": settings.model_dump(mode="json"),
    }
