"""Which engines are loaded, for how long, and who may use them.

- one engine per (model, load spec); a request needing another spec reloads the model;
- at most ``max_loaded`` engines: a new model first evicts the least recently used idle one,
  then waits for a busy one to go idle; only one model loads at a time;
- each engine has ``num_parallel`` slots; requests beyond them wait, at most ``max_queue``
  of them, after which new requests get :class:`ServerBusy` at once;
- ``keep_alive`` starts counting when the last request using a model ends (``None`` = forever);
- an engine that died is dropped and reloaded by the next request, never taking others down.

The engine factory and the clock are injected, so tests use fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from corral.core.fit import GIB
from corral.core.offload import LoadPlan
from corral.errors import EngineCrashed, InsufficientMemory, ServerBusy
from corral.hardware import MemoryProbe
from corral.observe import NULL_OBSERVER, Observer
from corral.runner.protocol import Engine, EngineFactory, LoadSpec
from corral.store.models import LocalModel

__all__ = ["Lease", "LoadedModel", "Scheduler"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class LoadedModel:
    model: LocalModel
    spec: LoadSpec
    engine: Engine
    slots: asyncio.Semaphore
    keep_alive: float | None
    active: int = 0
    last_used: float = 0.0
    expires_at: datetime | None = None
    closed: bool = False
    memory: int = 0  # estimated bytes in RAM, when memory-fit admission is on
    vram: int = 0  # estimated bytes placed on GPUs (automatic offload)
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        """Memory in use as /api/ps reports it: the estimate, else the files' size."""
        return (self.memory + self.vram) or self.model.size


@dataclass(slots=True)
class Lease:
    loaded: LoadedModel
    load_duration_ns: int

    @property
    def engine(self) -> Engine:
        return self.loaded.engine


class Scheduler:
    def __init__(
        self,
        engine_factory: EngineFactory,
        *,
        max_loaded: int,
        max_queue: int,
        memory: MemoryProbe | None = None,
        estimate: Callable[[LocalModel, LoadSpec], int] | None = None,
        plan: Callable[[LocalModel, LoadSpec], LoadPlan] | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        """``memory`` and ``estimate`` enable memory-fit admission (both or neither);
        ``plan`` (GPU offload) decides the engine's spec and splits the estimate between
        RAM and VRAM (see :mod:`corral.core.offload`)."""
        self._plan = plan
        self._observer = observer  # engine starts and crashes (metrics)
        self._factory = engine_factory
        self._memory = memory
        self._estimate = estimate
        self._max_loaded = max_loaded
        self._max_queue = max_queue
        self._clock = clock
        self._loaded: list[LoadedModel] = []
        self._load_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._waiting = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def running(self) -> list[LoadedModel]:
        return [m for m in self._loaded if not m.closed]

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a model to load or for a free slot."""
        return self._waiting

    @contextlib.asynccontextmanager
    async def acquire(
        self, model: LocalModel, spec: LoadSpec, keep_alive: float | None
    ) -> AsyncIterator[Lease]:
        """Hold one slot of a loaded engine for ``model`` for the duration of a request."""
        if self._waiting >= self._max_queue:
            raise ServerBusy("server busy, please try again. maximum pending requests exceeded")
        self._waiting += 1
        try:
            loaded, load_ns = await self._slot(model, spec, keep_alive)
        finally:
            self._waiting -= 1
        crashed = False
        try:
            yield Lease(loaded, load_ns)
        except EngineCrashed:
            crashed = True
            raise
        finally:
            await self._release(loaded, crashed or not loaded.engine.is_alive())

    async def _slot(
        self, model: LocalModel, spec: LoadSpec, keep_alive: float | None
    ) -> tuple[LoadedModel, int]:
        while True:
            started = time.perf_counter_ns()
            loaded, was_loaded = await self._ensure_loaded(model, spec, keep_alive)
            load_ns = 0 if not was_loaded else time.perf_counter_ns() - started
            loaded.keep_alive = keep_alive
            loaded.active += 1  # counted before waiting, so it is never evicted while we queue
            self._cancel_timer(loaded)
            try:
                await loaded.slots.acquire()
            except BaseException:
                loaded.active -= 1
                raise
            if not loaded.closed:
                return loaded, load_ns
            loaded.slots.release()
            loaded.active -= 1

    async def _ensure_loaded(
        self, model: LocalModel, spec: LoadSpec, keep_alive: float | None
    ) -> tuple[LoadedModel, bool]:
        current = self._find(model, spec)
        if current is not None and current.spec == spec and current.engine.is_alive():
            return current, False  # the common case takes no lock
        async with self._load_lock:
            while True:
                current = self._find(model, spec)
                if current is not None and current.spec == spec and current.engine.is_alive():
                    return current, False
                if current is not None and current.engine.is_alive() and current.active:
                    await self._wait_for_change()  # options changed: reload once it is idle
                    continue
                if current is not None:
                    await self._unload(current)
                if len(self.running()) < self._max_loaded:
                    break
                if not await self._evict_idle():
                    await self._wait_for_change()
            plan = await self._place(model, spec)
            required = await self._make_room(model, spec, plan)
            log.info("loading %s", spec.label)
            engine = await self._factory(spec if plan is None else plan.spec)
            self._observer.engine_started(model.name.display)
            loaded = LoadedModel(
                model=model,
                spec=spec,
                engine=engine,
                slots=asyncio.Semaphore(spec.num_parallel),
                keep_alive=keep_alive,
                last_used=self._clock(),
                memory=required,
                vram=0 if plan is None else plan.vram,
            )
            self._loaded.append(loaded)
            return loaded, True

    async def _evict_idle(self) -> bool:
        """Unload the least recently used idle engine; False when every engine is busy."""
        idle = [m for m in self.running() if m.active == 0]
        if not idle:
            return False
        await self._unload(min(idle, key=lambda m: m.last_used))
        return True

    async def _place(self, model: LocalModel, spec: LoadSpec) -> LoadPlan | None:
        """The offload plan; idle engines holding VRAM are evicted while layers don't fit."""
        if self._plan is None:
            return None
        plan = await asyncio.to_thread(self._plan, model, spec)  # the GPU probe may shell out
        while plan.gpu_short:
            on_gpu = [m for m in self.running() if m.active == 0 and m.vram]
            if not on_gpu:
                break
            await self._unload(min(on_gpu, key=lambda m: m.last_used))
            plan = await asyncio.to_thread(self._plan, model, spec)
        return plan

    async def _make_room(self, model: LocalModel, spec: LoadSpec, plan: LoadPlan | None) -> int:
        """Evict idle engines until ``model`` fits in free memory; fail fast if it never can."""
        if self._memory is None or self._estimate is None:
            return 0
        required = self._estimate(model, spec) if plan is None else plan.ram
        while True:
            available = self._memory().available
            if required <= available:
                return required
            if await self._evict_idle():
                continue
            reclaimable = sum(m.memory for m in self.running())  # busy engines, once done
            if required > available + reclaimable:
                raise InsufficientMemory(
                    f"model requires more system memory ({required / GIB:.1f} GiB) than is "
                    f"available ({(available + reclaimable) / GIB:.1f} GiB)"
                )
            await self._wait_for_change()

    def _find(self, model: LocalModel, spec: LoadSpec) -> LoadedModel | None:
        """The engine serving ``model`` in the same role (generation or embeddings)."""
        return next(
            (
                m
                for m in self.running()
                if m.model.digest == model.digest and m.spec.embedding == spec.embedding
            ),
            None,
        )

    async def _wait_for_change(self) -> None:
        async with self._changed:
            await self._changed.wait()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _release(self, loaded: LoadedModel, dead: bool) -> None:
        loaded.slots.release()
        loaded.active -= 1
        loaded.last_used = self._clock()
        if dead and not loaded.closed:
            log.warning("engine for %s stopped; it will be reloaded on next use", loaded.spec.label)
            self._observer.engine_crashed(loaded.model.name.display)
            await self._unload(loaded)
        elif loaded.active == 0 and not loaded.closed:
            self._start_timer(loaded)
        await self._notify()

    def _start_timer(self, loaded: LoadedModel) -> None:
        self._cancel_timer(loaded)
        if loaded.keep_alive is None:
            loaded.expires_at = None
            return
        loaded.expires_at = datetime.now(UTC) + timedelta(seconds=loaded.keep_alive)
        loop = asyncio.get_running_loop()
        loaded._timer = loop.call_later(loaded.keep_alive, self._spawn_expire, loaded)

    def _spawn_expire(self, loaded: LoadedModel) -> None:
        task = asyncio.get_running_loop().create_task(self._expire(loaded))
        self._tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._tasks.discard)

    def _cancel_timer(self, loaded: LoadedModel) -> None:
        if loaded._timer is not None:
            loaded._timer.cancel()
            loaded._timer = None
        if loaded.keep_alive is not None:
            loaded.expires_at = datetime.now(UTC) + timedelta(seconds=loaded.keep_alive)
        else:
            loaded.expires_at = None

    async def _expire(self, loaded: LoadedModel) -> None:
        if loaded.active == 0 and not loaded.closed:
            log.info("unloading %s (keep_alive expired)", loaded.spec.label)
            await self._unload(loaded)
            await self._notify()

    async def _unload(self, loaded: LoadedModel) -> None:
        loaded.closed = True
        self._cancel_timer(loaded)
        if loaded in self._loaded:
            self._loaded.remove(loaded)
        await loaded.engine.stop()

    async def unload(self, model: LocalModel) -> bool:
        """Unload every engine of ``model``: now if idle, else when its last request ends."""
        found = [m for m in self.running() if m.model.digest == model.digest]
        for current in found:
            current.keep_alive = 0
            if current.active == 0:
                await self._unload(current)
        await self._notify()
        return bool(found)

    async def watch(self, interval: float = 5.0, failures: int = 3) -> None:
        """Drop engines that died or stopped answering, so the next request reloads them.

        Requests in flight on a dropped engine end with an error (the connection closes).
        Runs until cancelled.
        """
        misses: dict[int, int] = {}
        while True:
            await asyncio.sleep(interval)
            for loaded in self.running():
                if await loaded.engine.healthy():
                    misses.pop(id(loaded), None)
                    continue
                misses[id(loaded)] = misses.get(id(loaded), 0) + 1
                if not loaded.engine.is_alive() or misses[id(loaded)] >= failures:
                    log.warning("engine for %s is not answering; unloading it", loaded.spec.label)
                    self._observer.engine_crashed(loaded.model.name.display)
                    misses.pop(id(loaded), None)
                    await self._unload(loaded)
                    await self._notify()

    async def shutdown(self) -> None:
        for loaded in list(self._loaded):
            await self._unload(loaded)
