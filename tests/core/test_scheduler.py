import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from corral.core.fit import GIB
from corral.core.scheduler import Scheduler
from corral.errors import EngineCrashed, InsufficientMemory, ServerBusy
from corral.hardware import MemoryInfo
from corral.names import parse_name
from corral.runner.protocol import LoadSpec
from corral.store.create import import_gguf
from corral.store.models import LocalModel, Store
from tests.fakes import FakeFactory


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> list[LocalModel]:
    """Three distinct models (distinct manifests over the same weights)."""
    store = Store(tmp_path_factory.mktemp("sched") / "models")
    out = []
    for tag in ("a", "b", "c"):
        import_gguf(store, parse_name(f"m:{tag}"), smollm2_path, params={"tag": tag})
        out.append(store.get(f"m:{tag}"))
    return out


def spec(model: LocalModel, **kw: int) -> LoadSpec:
    return LoadSpec(
        model_path=model.model_path,
        num_ctx=kw.get("num_ctx", 512),
        num_parallel=kw.get("num_parallel", 1),
        label=model.name.display,
    )


async def use(
    sched: Scheduler, model: LocalModel, keep_alive: float | None = 60, **kw: int
) -> None:
    async with sched.acquire(model, spec(model, **kw), keep_alive):
        pass


async def test_reuses_a_loaded_engine_and_reports_load_time(models: list[LocalModel]) -> None:
    factory = FakeFactory(load_delay=0.01)
    sched = Scheduler(factory, max_loaded=3, max_queue=10)
    async with sched.acquire(models[0], spec(models[0]), 60) as first:
        assert first.load_duration_ns > 0
    async with sched.acquire(models[0], spec(models[0]), 60) as second:
        assert second.load_duration_ns == 0
    assert len(factory.engines) == 1
    [running] = sched.running()
    assert running.expires_at is not None


async def test_changed_load_options_reload(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=3, max_queue=10)
    await use(sched, models[0], num_ctx=512)
    await use(sched, models[0], num_ctx=1024)
    assert [e.spec.num_ctx for e in factory.engines] == [512, 1024]
    assert factory.engines[0].stopped and not factory.engines[1].stopped


async def test_least_recently_used_idle_model_is_evicted(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=2, max_queue=10)
    await use(sched, models[0])
    await use(sched, models[1])
    await use(sched, models[0])  # a is now more recent than b
    await use(sched, models[2])
    assert sorted(m.model.name.tag for m in sched.running()) == ["a", "c"]


async def test_new_model_waits_for_a_busy_one(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=1, max_queue=10)
    order: list[str] = []
    release = asyncio.Event()

    async def hold_a() -> None:
        async with sched.acquire(models[0], spec(models[0]), 60):
            order.append("a running")
            await release.wait()
        order.append("a done")

    async def then_b() -> None:
        async with sched.acquire(models[1], spec(models[1]), 60):
            order.append("b running")

    task_a = asyncio.create_task(hold_a())
    await asyncio.sleep(0.01)
    task_b = asyncio.create_task(then_b())
    await asyncio.sleep(0.05)
    assert order == ["a running"]
    release.set()
    await asyncio.gather(task_a, task_b)
    assert order == ["a running", "a done", "b running"]


async def test_keep_alive_zero_unloads_after_the_request(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=3, max_queue=10)
    await use(sched, models[0], keep_alive=0)
    await asyncio.sleep(0.01)
    assert sched.running() == []
    assert factory.engines[0].stopped


async def test_keep_alive_timer_and_forever(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=3, max_queue=10)
    await use(sched, models[0], keep_alive=0.05)
    await use(sched, models[1], keep_alive=None)
    [forever] = [m for m in sched.running() if m.model is models[1]]
    assert forever.expires_at is None
    await asyncio.sleep(0.15)
    assert [m.model.name.tag for m in sched.running()] == ["b"]


async def test_slots_bound_concurrency_and_queue_is_bounded(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=3, max_queue=2)
    gate = asyncio.Event()
    active = 0
    peak = 0

    async def request() -> None:
        nonlocal active, peak
        async with sched.acquire(models[0], spec(models[0], num_parallel=2), 60):
            active += 1
            peak = max(peak, active)
            await gate.wait()
            active -= 1

    tasks = [asyncio.create_task(request()) for _ in range(4)]  # 2 run, 2 wait
    await asyncio.sleep(0.05)
    with pytest.raises(ServerBusy, match="maximum pending requests exceeded"):
        await use(sched, models[0], num_parallel=2)
    gate.set()
    await asyncio.gather(*tasks)
    assert peak == 2


async def test_crashed_engine_is_dropped_and_reloaded(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=3, max_queue=10)
    with pytest.raises(EngineCrashed):
        async with sched.acquire(models[0], spec(models[0]), 60):
            factory.engines[0].alive = False
            raise EngineCrashed("boom")
    assert sched.running() == []
    await use(sched, models[0])
    assert len(factory.engines) == 2


async def test_shutdown_stops_every_engine(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=3, max_queue=10)
    for m in models:
        await use(sched, m, keep_alive=None)
    await sched.shutdown()
    assert all(e.stopped for e in factory.engines) and sched.running() == []


class FakeMemory:
    """Free memory that shrinks by each loaded engine's estimate, as a real machine's would."""

    def __init__(self, free: int, sched_ref: list[Scheduler]) -> None:
        self.free = free
        self.sched_ref = sched_ref

    def __call__(self) -> MemoryInfo:
        used = sum(m.memory for m in self.sched_ref[0].running())
        return MemoryInfo(total=self.free, available=self.free - used)


def memory_scheduler(free: int, sizes: dict[str, int]) -> tuple[Scheduler, FakeFactory]:
    factory = FakeFactory()
    ref: list[Scheduler] = []
    sched = Scheduler(
        factory,
        max_loaded=10,
        max_queue=10,
        memory=FakeMemory(free, ref),
        estimate=lambda model, spec: sizes[model.name.tag],
    )
    ref.append(sched)
    return sched, factory


async def test_idle_models_are_evicted_to_make_room(models: list[LocalModel]) -> None:
    sched, _ = memory_scheduler(10 * GIB, {"a": 4 * GIB, "b": 4 * GIB, "c": 5 * GIB})
    await use(sched, models[0])
    await use(sched, models[1])
    await use(sched, models[2])  # needs a's room: a is least recently used
    assert sorted(m.model.name.tag for m in sched.running()) == ["b", "c"]
    [c] = [m for m in sched.running() if m.model.name.tag == "c"]
    assert c.size == 5 * GIB  # /api/ps reports the estimate


async def test_a_model_that_can_never_fit_fails_fast_with_both_numbers(
    models: list[LocalModel],
) -> None:
    sched, factory = memory_scheduler(4 * GIB, {"a": 6 * GIB, "b": 1 * GIB, "c": 1 * GIB})
    await use(sched, models[1])
    with pytest.raises(InsufficientMemory) as info:
        await use(sched, models[0])
    assert info.value.message == (
        "model requires more system memory (6.0 GiB) than is available (4.0 GiB)"
    )
    assert [e.spec.label for e in factory.engines] == ["m:b"]  # nothing was started


async def test_waits_for_a_busy_model_when_only_it_can_make_room(
    models: list[LocalModel],
) -> None:
    sched, _ = memory_scheduler(6 * GIB, {"a": 4 * GIB, "b": 4 * GIB, "c": 1 * GIB})
    release = asyncio.Event()
    order: list[str] = []

    async def hold_a() -> None:
        async with sched.acquire(models[0], spec(models[0]), 60):
            order.append("a")
            await release.wait()

    async def then_b() -> None:
        async with sched.acquire(models[1], spec(models[1]), 60):
            order.append("b")

    task_a = asyncio.create_task(hold_a())
    await asyncio.sleep(0.01)
    task_b = asyncio.create_task(then_b())
    await asyncio.sleep(0.05)
    assert order == ["a"]
    release.set()
    await asyncio.gather(task_a, task_b)
    assert order == ["a", "b"]


async def eventually(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait until ``condition`` holds (a bound on waiting, not a speed claim)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.005)


async def test_watch_drops_a_dead_engine_at_once(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=3, max_queue=10)
    await use(sched, models[0])
    await use(sched, models[1])
    factory.engines[0].alive = False
    watcher = asyncio.create_task(sched.watch(interval=0.01, failures=1000))
    await eventually(lambda: len(sched.running()) == 1)
    watcher.cancel()
    assert [m.model.name.tag for m in sched.running()] == ["b"]
    await use(sched, models[0])  # the next request loads it again
    assert len(factory.engines) == 3


async def test_watch_drops_a_hung_engine_after_repeated_misses(models: list[LocalModel]) -> None:
    factory = FakeFactory()
    sched = Scheduler(factory, max_loaded=3, max_queue=10)
    await use(sched, models[0])
    factory.engines[0].answers = False
    watcher = asyncio.create_task(sched.watch(interval=0.01, failures=3))
    await eventually(lambda: not sched.running())
    watcher.cancel()
    assert factory.engines[0].stopped
