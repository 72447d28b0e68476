"""Will a model fit this machine? The answer of ``corral fit``, ``POST /api/fit`` and the
``fit`` field of ``/api/show``: the estimate (:mod:`corral.core.fit`), where the layers would
go (:mod:`corral.core.offload`), and a plain verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from corral.core.fit import GIB, MemoryEstimate, estimate_memory
from corral.core.offload import Placement, layer_sizes, plan_offload
from corral.gguf import GGUFInfo
from corral.hardware import GPUInfo, MemoryInfo
from corral.runner.protocol import LoadSpec

__all__ = ["FitReport", "assess_fit"]


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


@dataclass(frozen=True, slots=True)
class FitReport:
    model: str
    source: str  # "local" (in the store) or "registry" (manifest + header, not pulled)
    file_size: int
    spec: LoadSpec
    estimate: MemoryEstimate
    placement: Placement
    gpus: tuple[GPUInfo, ...]
    memory: MemoryInfo
    overhead: int
    draft: MemoryEstimate | None = None  # a speculative-decoding draft, counted in RAM
    draft_name: str = ""

    @property
    def fits_vram(self) -> bool:
        return self.placement.full

    @property
    def ram_needed(self) -> int:
        return self.placement.ram + (self.draft.total if self.draft else 0)

    @property
    def fits_ram(self) -> bool:
        return self.ram_needed <= self.memory.available

    @property
    def fits(self) -> bool:
        """It can run here now: what is not on a GPU fits in the available RAM."""
        return self.fits_ram

    @property
    def workers(self) -> int:
        """RPC workers holding layers."""
        return sum(
            1 for g, n in zip(self.gpus, self.placement.per_gpu, strict=True)
            if g.vendor == "rpc" and n
        )  # fmt: skip

    @property
    def verdict(self) -> str:
        placed, layers = self.placement.gpu_layers, self.placement.total_layers
        if self.workers and self.fits:
            alone = self.estimate.total + (self.draft.total if self.draft else 0)
            machines = f"this machine and {self.workers} RPC worker{'s' * (self.workers > 1)}"
            if alone > self.memory.available:
                return (
                    f"fits across {machines} ({placed} of {layers} layers on the workers), "
                    f"not on this machine alone ({_gib(alone)} needed, "
                    f"{_gib(self.memory.available)} available)"
                )
            return f"fits: {placed} of {layers} layers on {machines}"
        if not self.fits:
            verdict = (
                f"does not fit: needs {_gib(self.ram_needed)} of RAM"
                f"{' besides the GPU layers' if placed else ''}, "
                f"{_gib(self.memory.available)} available"
            )
            if not self.gpus:
                verdict += " (no GPU found)"
            return verdict
        if self.fits_vram:
            where = " and ".join(sorted({g.name for g in self.gpus}))
            return f"fits: all {layers} layers in VRAM ({where})"
        if placed:
            return (
                f"fits, partly on the GPU: {placed} of {layers} layers in VRAM, the rest in "
                "RAM (slower than all on the GPU)"
            )
        why = "no GPU found" if not self.gpus else "too big for the GPU's free memory"
        return f"fits in RAM: runs on the CPU ({why})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``POST /api/fit`` (bytes as integers)."""
        est, placed = self.estimate, self.placement
        return {
            "model": self.model,
            "source": self.source,
            "file_size": self.file_size,
            "num_ctx": self.spec.num_ctx,
            "num_parallel": self.spec.num_parallel,
            "estimate": {
                "weights": est.weights,
                "kv_cache": est.kv_cache,
                "compute": est.compute,
                "total": est.total,
            },
            "layers": {"total": placed.total_layers, "gpu": placed.gpu_layers},
            "vram": {
                "gpus": [
                    {"name": g.name, "free": g.free, "total": g.total, "layers": n, "needed": v}
                    for g, n, v in zip(self.gpus, placed.per_gpu, placed.vram, strict=True)
                ],
                "overhead": self.overhead,
                "needed": placed.vram_total,
                "fits": self.fits_vram,
            },
            "ram": {
                "total": self.memory.total,
                "available": self.memory.available,
                "needed": self.ram_needed,
                "fits": self.fits_ram,
            },
            "fits": self.fits,
            "verdict": self.verdict,
            **({"draft": self._draft_dict()} if self.draft else {}),
        }

    def _draft_dict(self) -> dict[str, Any]:
        assert self.draft is not None
        draft = self.draft
        return {
            "model": self.draft_name,
            "weights": draft.weights,
            "kv_cache": draft.kv_cache,
            "compute": draft.compute,
            "total": draft.total,
        }


def assess_fit(
    info: GGUFInfo,
    file_size: int,
    spec: LoadSpec,
    *,
    gpus: Sequence[GPUInfo],
    memory: MemoryInfo,
    overhead: int = 0,
    model: str = "",
    source: str = "local",
    draft: MemoryEstimate | None = None,
    draft_name: str = "",
) -> FitReport:
    estimate = estimate_memory(info, file_size, spec)
    placement = plan_offload(
        layer_sizes(info, estimate), estimate, gpus, overhead=overhead, requested=spec.num_gpu
    )
    return FitReport(
        model=model,
        source=source,
        file_size=file_size,
        spec=spec,
        estimate=estimate,
        placement=placement,
        gpus=tuple(gpus),
        memory=memory,
        overhead=overhead,
        draft=draft,
        draft_name=draft_name,
    )
