"""Automatic GPU offload with fake inventories: no GPU, one 8 GB GPU, two GPUs, an overhead,
a cgroup memory limit -> layer counts, engine flags, /api/ps size_vram and fit verdicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.core.fit import MemoryEstimate, estimate_memory
from corral.core.fitreport import assess_fit
from corral.core.offload import (
    LayerSizes,
    Offloader,
    Placement,
    engine_spec,
    layer_sizes,
    plan_offload,
)
from corral.core.scheduler import Scheduler
from corral.gguf import GGUFInfo, read_gguf
from corral.hardware import GPUInfo, Hardware, MemoryInfo
from corral.names import parse_name
from corral.runner.flags import server_args
from corral.runner.protocol import LoadSpec
from corral.store.create import import_gguf
from corral.store.defaults import ensure_default_model
from corral.store.models import LocalModel, Store
from tests.fakes import FakeFactory

MIB = 1024 * 1024
GIB = 1024 * MIB


def gpu(free_gib: float, index: int = 0, total_gib: float | None = None) -> GPUInfo:
    free = int(free_gib * GIB)
    total = int((total_gib or free_gib) * GIB)
    return GPUInfo(index, f"Fake GPU {index}", "nvidia", total, free, "550.0", f"GPU-{index}")


# A 7B-like model: 32 layers of 400 MiB (weights + KV), a 500 MiB output layer.
SEVEN_B = LayerSizes(blocks=32, block=400 * MIB, output=500 * MIB, embeddings=500 * MIB,
                     compute=300 * MIB)  # fmt: skip
SEVEN_B_ESTIMATE = MemoryEstimate(
    weights=32 * 300 * MIB + 500 * MIB, kv_cache=32 * 100 * MIB, compute=300 * MIB
)


def test_no_gpu_keeps_everything_in_ram_and_the_flags_alone() -> None:
    placed = plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [])
    assert (placed.gpu_layers, placed.vram_total, placed.total_layers) == (0, 0, 33)
    assert placed.ram == SEVEN_B_ESTIMATE.total
    spec = LoadSpec(Path("m.gguf"), num_ctx=4096)
    assert engine_spec(spec, placed) == spec
    assert "-ngl" not in server_args(engine_spec(spec, placed), 1)


def test_one_8gb_gpu_takes_what_fits() -> None:
    placed = plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [gpu(8)])
    # (8192 - 300 compute) // 400 = 19 layers; the output layer needs all 32 on the GPU
    assert placed.gpu_layers == 19 and placed.per_gpu == (19,) and not placed.full
    assert placed.vram == (19 * 400 * MIB + 300 * MIB,)
    assert placed.ram == SEVEN_B_ESTIMATE.total - 19 * 400 * MIB
    args = server_args(engine_spec(LoadSpec(Path("m.gguf"), num_ctx=4096), placed), 1)
    assert args[args.index("-ngl") + 1] == "19"
    assert args[args.index("--fit") + 1] == "off"
    assert "--tensor-split" not in args


def test_gpu_overhead_is_kept_free() -> None:
    placed = plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [gpu(8)], overhead=2 * GIB)
    assert placed.gpu_layers == (6144 - 300) // 400 == 14


def test_two_gpus_split_the_layers() -> None:
    placed = plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [gpu(8, 0), gpu(8, 1)])
    assert placed.full and placed.gpu_layers == 33
    assert sorted(placed.per_gpu) == [16, 17]  # 16 blocks each, the output on one of them
    assert placed.vram_total == 32 * 400 * MIB + 2 * 300 * MIB + 500 * MIB
    args = server_args(engine_spec(LoadSpec(Path("m.gguf"), num_ctx=4096), placed), 1)
    assert args[args.index("-ngl") + 1] == "33"
    split = args[args.index("--tensor-split") + 1]
    assert sorted(map(int, split.split(","))) == [16, 17]


def test_two_unequal_gpus_split_in_proportion() -> None:
    placed = plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [gpu(6, 0), gpu(4, 1)])
    # capacity: (6144-300)//400 = 14 and (4096-300)//400 = 9 -> all 23, not all 32
    assert placed.per_gpu == (14, 9) and placed.gpu_layers == 23 and not placed.full


def test_a_model_that_fits_one_gpu_goes_on_the_roomiest() -> None:
    placed = plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [gpu(8, 0), gpu(24, 1)])
    assert placed.per_gpu == (0, 33) and placed.vram[0] == 0
    spec = engine_spec(LoadSpec(Path("m.gguf"), num_ctx=4096), placed)
    assert spec.tensor_split == (0, 33) and spec.num_gpu == 33


def test_a_requested_num_gpu_is_obeyed() -> None:
    assert plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [gpu(24)], requested=10).gpu_layers == 10
    none = plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [gpu(24)], requested=0)
    assert none.gpu_layers == 0 and none.vram_total == 0
    spec = engine_spec(LoadSpec(Path("m.gguf"), num_ctx=4096, num_gpu=0), none)
    assert spec.num_gpu == 0  # CPU only, said explicitly: the engine's --fit must not offload
    # Ollama's -1: as many as fit
    assert plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [gpu(8)], requested=-1).gpu_layers == 19


def test_a_gpu_too_small_for_one_layer_gets_none() -> None:
    placed = plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, [gpu(0.5)])
    assert placed.gpu_layers == 0 and placed.per_gpu == (0,)
    assert engine_spec(LoadSpec(Path("m.gguf"), num_ctx=4096), placed).num_gpu == 0


def worker(free_gib: float, index: int) -> GPUInfo:
    endpoint = f"10.0.0.{index + 2}:50052"
    return GPUInfo(index, endpoint, "rpc", int(free_gib * GIB), int(free_gib * GIB), id=endpoint)


def test_rpc_workers_share_the_layers_even_when_one_could_hold_them() -> None:
    workers = [worker(24, 0), worker(24, 1)]
    placed = plan_offload(SEVEN_B, SEVEN_B_ESTIMATE, workers)
    assert placed.full and sorted(placed.per_gpu) == [16, 17]
    spec = engine_spec(LoadSpec(Path("m.gguf"), num_ctx=4096), placed, workers)
    args = server_args(spec, 1)
    assert args[args.index("--rpc") + 1] == "10.0.0.2:50052,10.0.0.3:50052"
    assert sorted(map(int, args[args.index("--tensor-split") + 1].split(","))) == [16, 17]
    assert "--rpc" not in server_args(engine_spec(LoadSpec(Path("m.gguf"), num_ctx=8), placed), 1)


def test_fit_says_when_only_the_workers_make_it_fit(smollm2_path: Path) -> None:
    info = read_gguf(smollm2_path)
    size = smollm2_path.stat().st_size
    spec = LoadSpec(smollm2_path, num_ctx=4096)
    small = MemoryInfo(total=128 * MIB, available=100 * MIB)
    plenty = MemoryInfo(total=16 * GIB, available=12 * GIB)
    workers = [worker(1, 0), worker(1, 1)]
    across = assess_fit(info, size, spec, gpus=workers, memory=small)
    assert across.fits and across.workers == 2
    assert across.verdict.startswith("fits across this machine and 2 RPC workers (31 of 31")
    assert "not on this machine alone" in across.verdict
    alone = assess_fit(info, size, spec, gpus=[], memory=small)
    assert not alone.fits
    either = assess_fit(info, size, spec, gpus=workers, memory=plenty)
    assert either.verdict == "fits: 31 of 31 layers on this machine and 2 RPC workers"


def test_verdicts_against_ram_and_a_cgroup_limit(smollm2_path: Path) -> None:
    info = read_gguf(smollm2_path)
    size = smollm2_path.stat().st_size
    spec = LoadSpec(smollm2_path, num_ctx=4096)
    plenty = MemoryInfo(total=16 * GIB, available=12 * GIB)
    cgroup = MemoryInfo(total=128 * MIB, available=100 * MIB)  # a tiny container

    cpu = assess_fit(info, size, spec, gpus=[], memory=plenty)
    assert cpu.fits and not cpu.fits_vram and cpu.placement.gpu_layers == 0
    assert cpu.verdict == "fits in RAM: runs on the CPU (no GPU found)"

    boxed = assess_fit(info, size, spec, gpus=[], memory=cgroup)
    assert not boxed.fits and boxed.verdict.startswith("does not fit: needs 0.")

    on_gpu = assess_fit(info, size, spec, gpus=[gpu(8)], memory=cgroup)
    assert on_gpu.fits_vram and on_gpu.placement.gpu_layers == 31  # 30 blocks + output
    assert on_gpu.verdict == "fits: all 31 layers in VRAM (Fake GPU 0)"
    # Only the embeddings and buffers stay in RAM: the 100 MiB container is enough.
    assert on_gpu.ram_needed < 100 * MIB and on_gpu.fits

    tiny = assess_fit(info, size, spec, gpus=[gpu(0.1)], memory=plenty)
    assert 0 < tiny.placement.gpu_layers < 30
    assert tiny.verdict.startswith(f"fits, partly on the GPU: {tiny.placement.gpu_layers} of 31")
    report = tiny.to_dict()
    assert report["layers"] == {"total": 31, "gpu": tiny.placement.gpu_layers}
    assert report["vram"]["gpus"][0]["layers"] == tiny.placement.gpu_layers


def test_layer_sizes_of_a_real_model(smollm2_path: Path) -> None:
    info = read_gguf(smollm2_path)
    estimate = estimate_memory(info, smollm2_path.stat().st_size, LoadSpec(smollm2_path, 4096))
    sizes = layer_sizes(info, estimate)
    assert sizes.blocks == 30
    # 49152 tokens x 576 dims at Q4_1's ~0.6 bytes per weight: ~17 MB of embeddings
    assert 10 * MIB < sizes.embeddings < 30 * MIB
    assert sizes.blocks * sizes.block + sizes.embeddings == pytest.approx(
        estimate.weights + estimate.kv_cache, abs=sizes.blocks
    )


# -- through the server: the scheduler passes the plan to the engine, /api/ps reports it ----


@pytest.fixture(scope="module")
def seeded_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("offload-store") / "models"
    assert ensure_default_model(Store(root))
    return root


MakeClient = Callable[..., TestClient]


@pytest.fixture
def app_with(seeded_models: Path, tmp_path: Path) -> Iterator[MakeClient]:
    made: list[TestClient] = []

    def make(gpus: list[GPUInfo], factory: FakeFactory, **settings: object) -> TestClient:
        hardware = Hardware(gpus=lambda: gpus, memory=lambda: MemoryInfo(16 * GIB, 12 * GIB))
        app = create_app(
            Settings(home=tmp_path / "home", models=seeded_models, **settings),  # type: ignore[arg-type]
            engine_factory=factory,
            hardware=hardware,
        )
        client = TestClient(app)
        client.__enter__()
        made.append(client)
        return client

    yield make
    for client in made:
        client.__exit__(None, None, None)


def _generate(client: TestClient, **options: object) -> None:
    body = {"model": "smollm2:135m", "prompt": "hi", "stream": False, "options": options}
    assert client.post("/api/generate", json=body).status_code == 200


def _expected(smollm2_path: Path, gpus: list[GPUInfo], overhead: int = 0) -> Placement:
    info = read_gguf(smollm2_path)
    estimate = estimate_memory(info, smollm2_path.stat().st_size, LoadSpec(smollm2_path, 4096))
    return plan_offload(layer_sizes(info, estimate), estimate, gpus, overhead=overhead)


def test_server_offloads_to_one_gpu_and_reports_size_vram(
    app_with: MakeClient, smollm2_path: Path
) -> None:
    factory = FakeFactory()
    gpus = [gpu(8)]
    client = app_with(gpus, factory)
    _generate(client)
    [engine] = factory.engines
    args = server_args(engine.spec, 1)
    assert args[args.index("-ngl") + 1] == "31" and "--tensor-split" not in args
    placed = _expected(smollm2_path, gpus)
    [entry] = client.get("/api/ps").json()["models"]
    assert entry["size_vram"] == placed.vram_total > 0
    assert entry["size"] == placed.ram + placed.vram_total
    # the requested spec is remembered, not the planned one: the next request reuses the engine
    _generate(client)
    assert len(factory.engines) == 1


def test_server_splits_over_two_gpus(app_with: MakeClient, smollm2_path: Path) -> None:
    factory = FakeFactory()
    gpus = [gpu(0.1, 0), gpu(0.08, 1)]  # too small for all of it on one
    client = app_with(gpus, factory)
    _generate(client)
    [engine] = factory.engines
    placed = _expected(smollm2_path, gpus)
    assert engine.spec.tensor_split == placed.per_gpu and len(placed.per_gpu) == 2
    assert all(placed.per_gpu) and engine.spec.num_gpu == sum(placed.per_gpu)
    args = server_args(engine.spec, 1)
    assert args[args.index("--tensor-split") + 1] == ",".join(map(str, placed.per_gpu))
    assert client.get("/api/ps").json()["models"][0]["size_vram"] == placed.vram_total


def test_server_without_gpu_and_with_num_gpu_zero(app_with: MakeClient) -> None:
    factory = FakeFactory()
    client = app_with([], factory)
    _generate(client)
    assert factory.engines[0].spec.num_gpu is None  # the engine's default: nothing to offload
    assert client.get("/api/ps").json()["models"][0]["size_vram"] == 0

    factory = FakeFactory()
    client = app_with([gpu(8)], factory)
    _generate(client, num_gpu=0)
    assert factory.engines[0].spec.num_gpu == 0
    assert client.get("/api/ps").json()["models"][0]["size_vram"] == 0


def test_server_gpu_overhead_setting(app_with: MakeClient, smollm2_path: Path) -> None:
    factory = FakeFactory()
    gpus = [gpu(0.25)]
    client = app_with(gpus, factory, gpu_overhead=150 * MIB)
    _generate(client)
    placed = _expected(smollm2_path, gpus, overhead=150 * MIB)
    without = _expected(smollm2_path, gpus)
    assert factory.engines[0].spec.num_gpu == placed.gpu_layers < without.gpu_layers


# -- the scheduler: idle models holding VRAM make room for a new one ---------------------------


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> list[LocalModel]:
    store = Store(tmp_path_factory.mktemp("offload-sched") / "models")
    for tag in ("a", "b"):
        import_gguf(store, parse_name(f"m:{tag}"), smollm2_path, params={"tag": tag})
    return [store.get("m:a"), store.get("m:b")]


def simulated_gpu(total: int, scheduler: list[Scheduler]) -> Callable[[], list[GPUInfo]]:
    """One GPU whose free memory is what the loaded engines' plans have not taken."""

    def probe() -> list[GPUInfo]:
        used = sum(m.vram for m in scheduler[0].running()) if scheduler else 0
        return [GPUInfo(0, "Sim", "nvidia", total, total - used)]

    return probe


def _full_vram(model: LocalModel) -> int:
    info = read_gguf(model.model_path)
    estimate = estimate_memory(
        info, model.model_path.stat().st_size, LoadSpec(model.model_path, 512)
    )
    placed = plan_offload(layer_sizes(info, estimate), estimate, [gpu(80)])
    assert placed.full
    return placed.vram_total


async def test_an_idle_model_leaves_the_gpu_for_a_new_one(two_models: list[LocalModel]) -> None:
    a, b = two_models
    holder: list[Scheduler] = []
    full = _full_vram(a)
    offloader = Offloader(simulated_gpu(full * 3 // 2, holder), read_gguf_of)
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=3, max_queue=10, plan=offloader.plan)
    holder.append(sched)

    def spec(m: LocalModel) -> LoadSpec:
        return LoadSpec(m.model_path, num_ctx=512, label=m.name.display)

    async with sched.acquire(a, spec(a), 60):
        pass
    assert [m.vram for m in sched.running()] == [full]
    async with sched.acquire(b, spec(b), 60):  # a is idle: unloaded so that b fits whole
        assert [m.model.name.display for m in sched.running()] == ["m:b"]
        assert factory.engines[0].stopped and factory.engines[1].spec.num_gpu == 31
        # while b is busy, a comes back partly offloaded next to it
        async with sched.acquire(a, spec(a), 60):
            placed = {m.model.name.display: m for m in sched.running()}
            assert placed["m:b"].vram == full and 0 < placed["m:a"].vram < full
            assert 0 < (factory.engines[2].spec.num_gpu or 0) < 31
    await sched.shutdown()


def read_gguf_of(model: LocalModel) -> GGUFInfo:
    return read_gguf(model.model_path)
