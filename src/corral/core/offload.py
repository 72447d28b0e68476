"""How many layers go to the GPUs, and how they are split between them.

llama.cpp offloads the *last* ``-ngl`` of a model's ``block_count + 1`` layers (the extra one
is the output projection); token embeddings always stay in RAM. Each GPU that holds layers
also holds a compute buffer. So, with the estimate of :mod:`corral.core.fit`:

- a repeating layer costs its weights, ``(weights - embeddings) / block_count``, plus its KV
  cache, ``kv_cache / block_count``; the output layer costs about the embeddings' size (same
  shape; a tied one is duplicated onto the GPU);
- usable VRAM per GPU is its free memory minus ``CORRAL_GPU_OVERHEAD``;
- when the whole model fits one GPU, it goes on the one with the most free memory (no
  cross-GPU traffic); otherwise layers are spread in proportion to what each GPU can hold,
  and the engine gets ``-ngl N --tensor-split a,b,...`` (its split is by layer).

A ``num_gpu`` the user set is obeyed; the plan then only says where those layers land.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from corral.core.fit import MemoryEstimate, estimate_memory, vocab_size
from corral.gguf import GGUFInfo
from corral.hardware import GPUInfo
from corral.runner.protocol import LoadSpec
from corral.store.models import LocalModel

__all__ = ["LayerSizes", "LoadPlan", "Offloader", "Placement", "layer_sizes", "plan_offload"]


@dataclass(frozen=True, slots=True)
class LayerSizes:
    blocks: int  # repeating layers
    block: int  # bytes on a GPU per repeating layer: weights + KV cache
    output: int  # bytes of the output layer
    embeddings: int  # bytes of the token embeddings (never offloaded)
    compute: int  # compute buffer, once per GPU in use


def layer_sizes(info: GGUFInfo, estimate: MemoryEstimate) -> LayerSizes:
    blocks = info.block_count or 0
    bytes_per_param = estimate.weights / max(info.parameter_count, 1)
    embeddings = int(vocab_size(info) * (info.embedding_length or 0) * bytes_per_param)
    embeddings = min(embeddings, estimate.weights // 2)
    per_block = (estimate.weights - embeddings + estimate.kv_cache) // max(blocks, 1)
    return LayerSizes(blocks, per_block, embeddings, embeddings, estimate.compute)


@dataclass(frozen=True, slots=True)
class Placement:
    total_layers: int  # block_count + 1
    gpu_layers: int  # what -ngl gets
    per_gpu: tuple[int, ...]  # layers per GPU (the output layer counted where it lands)
    vram: tuple[int, ...]  # bytes per GPU
    ram: int  # bytes left in RAM

    @property
    def vram_total(self) -> int:
        return sum(self.vram)

    @property
    def full(self) -> bool:
        return self.total_layers > 0 and self.gpu_layers >= self.total_layers


def _spread(count: int, capacity: list[int]) -> list[int]:
    """``count`` layers over GPUs in proportion to ``capacity`` (largest remainder), each at
    most its capacity when the total allows it."""
    total = sum(capacity)
    if total <= 0 or count <= 0:
        return [0] * len(capacity)
    shares = [count * c / total for c in capacity]
    layers = [int(s) for s in shares]
    order = sorted(range(len(capacity)), key=lambda i: shares[i] - layers[i], reverse=True)
    for i in order[: count - sum(layers)]:
        layers[i] += 1
    return layers


def plan_offload(
    sizes: LayerSizes,
    estimate: MemoryEstimate,
    gpus: Sequence[GPUInfo],
    *,
    overhead: int = 0,
    requested: int | None = None,
) -> Placement:
    """Where the layers go: as many as fit the GPUs' free VRAM, or ``requested`` of them."""
    if requested is not None and requested < 0:  # Ollama's -1: as many as fit
        requested = None
    total_layers = sizes.blocks + 1 if sizes.blocks else 0
    none = Placement(total_layers, 0, (0,) * len(gpus), (0,) * len(gpus), estimate.total)
    if not gpus or not sizes.blocks or requested == 0:
        return none
    usable = [max(g.free - overhead, 0) for g in gpus]
    whole = sizes.compute + sizes.blocks * sizes.block + sizes.output
    target = total_layers if requested is None else min(requested, total_layers)
    best = max(range(len(gpus)), key=lambda i: usable[i])
    # All of it on the roomiest GPU; RPC workers are machines the user added to share the
    # load, so layers are spread over them instead.
    workers = any(g.vendor == "rpc" for g in gpus)
    if requested is None and usable[best] >= whole and not workers:
        blocks = [sizes.blocks if i == best else 0 for i in range(len(gpus))]
        output_on: int | None = best
    else:
        room = [max(u - sizes.compute, 0) for u in usable]
        capacity = [r // max(sizes.block, 1) for r in room]
        want = min(target, sizes.blocks)
        if requested is None:
            want = min(want, sum(capacity))
        blocks = _spread(want, capacity if sum(capacity) else usable)
        leftover = [room[i] - blocks[i] * sizes.block for i in range(len(gpus))]
        output_on = max(range(len(gpus)), key=lambda i: leftover[i])
        fits_output = leftover[output_on] >= sizes.output or requested is not None
        if target <= sizes.blocks or want < sizes.blocks or not fits_output:
            output_on = None
    vram = tuple(
        (blocks[i] * sizes.block + sizes.compute if blocks[i] else 0)
        + (sizes.output if output_on == i else 0)
        for i in range(len(gpus))
    )
    per_gpu = tuple(blocks[i] + (1 if output_on == i else 0) for i in range(len(gpus)))
    gpu_layers = sum(per_gpu)
    if not gpu_layers:
        return none
    # What stays in RAM: embeddings, the other layers' weights and KV, the host compute buffer.
    ram = max(estimate.total - sum(blocks) * sizes.block, 0)
    return Placement(total_layers, gpu_layers, per_gpu, vram, ram)


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What the scheduler starts: the engine's spec and the memory it will take."""

    spec: LoadSpec
    ram: int
    vram: int
    gpu_short: bool = False  # GPUs are there but not every layer fitted


def engine_spec(spec: LoadSpec, placement: Placement, gpus: Sequence[GPUInfo] = ()) -> LoadSpec:
    """``spec`` with the planned ``-ngl`` (and the split when several GPUs take part); the RPC
    workers among ``gpus`` (listed first, as the engine orders its devices) join with
    ``--rpc``."""
    if not placement.per_gpu:  # no GPU: the engine's default (a CPU build offloads nothing)
        return spec
    split = placement.per_gpu if len(placement.per_gpu) > 1 and placement.gpu_layers else None
    workers = tuple(g.id for g in gpus if g.vendor == "rpc") if placement.gpu_layers else ()
    return dataclasses.replace(
        spec, num_gpu=placement.gpu_layers, tensor_split=split, rpc_workers=workers
    )


class Offloader:
    """Plans each load against the GPUs' free VRAM (read at load time)."""

    def __init__(
        self,
        gpus: Callable[[], list[GPUInfo]],
        gguf: Callable[[LocalModel], GGUFInfo],
        *,
        overhead: int = 0,
    ) -> None:
        self._gpus = gpus
        self._gguf = gguf
        self.overhead = overhead

    def plan(self, model: LocalModel, spec: LoadSpec) -> LoadPlan:
        info = self._gguf(model)
        estimate = estimate_memory(info, model.model_path.stat().st_size, spec)
        gpus = self._gpus()
        sizes = layer_sizes(info, estimate)
        placed = plan_offload(sizes, estimate, gpus, overhead=self.overhead, requested=spec.num_gpu)
        short = bool(placed.per_gpu) and not placed.full and spec.num_gpu is None
        return LoadPlan(engine_spec(spec, placed, gpus), placed.ram, placed.vram_total, short)
