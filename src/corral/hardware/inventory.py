"""The whole machine at once, and :class:`Hardware`, the probe the server is built with.

The app factory makes one ``Hardware()``; tests pass ``Hardware(gpus=..., memory=...)`` with
fake inventories (no GPU, one 8 GB GPU, two GPUs, a cgroup limit) and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from corral.hardware.cpu import CPUInfo, read_cpu
from corral.hardware.gpu import GPUInfo, GPUProbe, read_gpus
from corral.hardware.memory import MemoryInfo, MemoryProbe, read_memory

__all__ = ["Hardware", "Inventory"]


@dataclass(frozen=True, slots=True)
class Inventory:
    cpu: CPUInfo
    memory: MemoryInfo
    gpus: tuple[GPUInfo, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, bytes as integers (the shape of ``GET /api/info``'s ``hardware``)."""
        return {
            "cpu": {**asdict(self.cpu), "flags": list(self.cpu.flags)},
            "memory": asdict(self.memory),
            "gpus": [{**asdict(g), "backend": g.backend} for g in self.gpus],
        }


class Hardware:
    """CPU, RAM and GPUs, each from an injectable probe (the defaults read this machine)."""

    def __init__(
        self,
        *,
        cpu: Callable[[], CPUInfo] = read_cpu,
        memory: MemoryProbe = read_memory,
        gpus: GPUProbe = read_gpus,
    ) -> None:
        self.cpu = cpu
        self.memory = memory
        self.gpus = gpus

    def inventory(self) -> Inventory:
        return Inventory(cpu=self.cpu(), memory=self.memory(), gpus=tuple(self.gpus()))
