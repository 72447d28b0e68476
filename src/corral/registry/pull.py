"""Pull orchestration: manifest, disk check, shared parallel blob downloads, manifest last.

Every blob is one shared job, keyed by digest: a second pull of the same model (or of
another model sharing a layer) waits on the running download instead of starting its own.
A job is cancelled when its last waiter goes away (a client's Ctrl-C), leaving its partial
file to be resumed. Nothing becomes visible before it is verified, and the manifest is
written last, under the store lock, after checking that every blob it names is present.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from pydantic import ValidationError

from corral.errors import CorralError, InsufficientDiskSpace, RegistryError, StoreError
from corral.names import ModelName
from corral.registry.download import BlobClient, DownloadOptions, PartialBlob, download_blob
from corral.registry.oci import OCIClient
from corral.registry.progress import Progress
from corral.store.atomic import write_atomic
from corral.store.blobs import parse_digest
from corral.store.manifests import Layer, Manifest
from corral.store.models import Store
from corral.store.prune import remove_unreferenced

__all__ = ["Puller"]

_TICK = 0.2  # seconds between progress lines per layer


@dataclass
class _Job:
    size: int
    completed: int = 0
    waiters: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Puller:
    def __init__(
        self,
        store: Store,
        *,
        noprune: bool = False,
        lock: threading.Lock | None = None,
        held: Callable[[], Collection[str]] = frozenset,
        options: DownloadOptions | None = None,
    ) -> None:
        self.store = store
        self.noprune = noprune
        self.options = options or DownloadOptions()
        self._lock = lock or threading.Lock()  # shared with the model manager: writes vs prune
        self._held = held  # digests other store work holds
        self._jobs: dict[str, _Job] = {}
        self._pins: Counter[str] = Counter()
        self.downloads = 0  # blob downloads started (tests check that pulls share them)

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    @contextmanager
    def pinned(self, digest: str) -> Iterator[None]:
        """Keep ``digest`` from being pruned while another source's pull works on it."""
        self._pins[digest] += 1
        try:
            yield
        finally:
            self._pins[digest] -= 1
            self._pins = +self._pins

    async def pull(
        self, name: ModelName, client_factory: Callable[[], OCIClient]
    ) -> AsyncIterator[Progress]:
        """An OCI pull: the manifest, its blobs, then the manifest bytes as sent."""
        yield Progress(status="pulling manifest")
        client = client_factory()
        try:
            raw, _ = await client.get_manifest()
        finally:
            await client.aclose()
        manifest = _parse_manifest(raw)
        blobs = [*manifest.layers, manifest.config]
        async with self.holding(blobs):
            async for line in self.download(blobs, client_factory):
                yield line
            yield Progress(status="verifying sha256 digest")
            yield Progress(status="writing manifest")

            def write() -> None:
                old = self.store.manifests.get(name)
                root = self.store.manifests.root
                write_atomic(old.path if old else root.joinpath(*name.manifest_parts()), raw)

            await asyncio.to_thread(self.commit, name, manifest.digests(), write)
        yield Progress(status="success")

    @asynccontextmanager
    async def holding(self, layers: Sequence[Layer]) -> AsyncIterator[None]:
        """Pins ``layers`` against pruning and checks the disk has room for them; when the
        block fails, the blobs it added are removed again (partial files stay for a resume):
        a failed pull leaves the store as it was."""
        digests = [layer.digest for layer in layers]
        self._pins.update(digests)
        fresh = {d for d in digests if not self.store.blobs.exists(d)}
        committed = False
        try:
            self._check_space(layers)
            yield
            committed = True
        finally:
            self._pins.subtract(digests)
            self._pins = +self._pins
            if not committed and fresh:
                await asyncio.to_thread(self.drop, fresh)

    async def download(
        self, layers: Sequence[Layer], client_factory: Callable[[], BlobClient]
    ) -> AsyncIterator[Progress]:
        """Downloads ``layers`` (shared with other pulls), yielding Ollama's per-layer lines."""
        joined: list[tuple[Layer, _Job]] = []
        try:
            joined = [(layer, self._join(layer, client_factory)) for layer in layers]
            async for line in self._watch(joined):
                yield line
        finally:
            for _, job in joined:
                self._leave(job)

    def commit(self, name: ModelName, required: set[str], write: Callable[[], None]) -> None:
        """Under the store lock: every ``required`` blob present, ``write`` the manifest, then
        prune what the replaced manifest held and the new one does not."""
        with self._lock:
            for digest in required:
                if not self.store.blobs.exists(digest):
                    raise StoreError(f"blob {digest} vanished during the pull; pull again")
            old = self.store.manifests.get(name)
            write()
            new = self.store.manifests.get(name)
            if old is not None and new is not None and not self.noprune:
                keep = set(self._pins) | set(self._held())
                stale = old.manifest.digests() - new.manifest.digests()
                remove_unreferenced(self.store, stale, keep=keep)

    def drop(self, digests: set[str]) -> None:
        """Remove ``digests`` unless a manifest, a running pull or other store work holds them."""
        with self._lock:
            remove_unreferenced(self.store, digests, keep=set(self._pins) | set(self._held()))

    def _check_space(self, layers: Sequence[Layer]) -> None:
        blobs = self.store.blobs
        needed = 0
        for layer in {x.digest: x for x in layers}.values():
            if not blobs.exists(layer.digest):
                partial = PartialBlob(blobs, layer.digest, layer.size)
                have = partial.path.stat().st_size if partial.path.is_file() else 0
                needed += max(0, layer.size - have)
        blobs.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(blobs.root).free
        if needed > free:
            raise InsufficientDiskSpace(
                f"not enough disk space in {blobs.root}: the pull needs {needed} bytes, "
                f"{free} bytes are free"
            )

    def _join(self, layer: Layer, client_factory: Callable[[], BlobClient]) -> _Job:
        job = self._jobs.get(layer.digest)
        if job is None or (job.task is not None and job.task.done()):
            job = _Job(size=layer.size)
            self._jobs[layer.digest] = job
            job.task = asyncio.create_task(self._download(layer, job, client_factory))
        job.waiters += 1
        return job

    def _leave(self, job: _Job) -> None:
        job.waiters -= 1
        if job.waiters == 0 and job.task is not None and not job.task.done():
            job.task.cancel()  # nobody waits any more: stop, keep the partial for a resume

    async def _download(
        self, layer: Layer, job: _Job, client_factory: Callable[[], BlobClient]
    ) -> None:
        def progress(n: int) -> None:
            job.completed += n

        if not self.store.blobs.exists(layer.digest):
            self.downloads += 1
        client = client_factory()
        try:
            await download_blob(
                client, self.store.blobs, layer.digest, layer.size, progress, self.options
            )
        finally:
            await client.aclose()
            if self._jobs.get(layer.digest) is job:
                del self._jobs[layer.digest]

    async def _watch(self, joined: list[tuple[Layer, _Job]]) -> AsyncIterator[Progress]:
        shown: dict[str, int] = {}
        pending = {job.task for _, job in joined if job.task is not None}
        while True:
            for layer, job in joined:
                if shown.get(layer.digest) != job.completed:
                    shown[layer.digest] = job.completed
                    yield Progress(
                        status=f"pulling {layer.digest[7:19]}",
                        digest=layer.digest,
                        total=layer.size,
                        completed=min(job.completed, layer.size),
                    )
            if not pending:
                return
            done, pending = await asyncio.wait(pending, timeout=_TICK)
            for task in done:
                task.result()  # a failed download fails every pull waiting on it


def _parse_manifest(raw: bytes) -> Manifest:
    try:
        manifest = Manifest.model_validate_json(raw)
        for layer in [manifest.config, *manifest.layers]:
            layer.digest = parse_digest(layer.digest)  # no path tricks in a blob name
            if layer.size < 0:
                raise ValueError(f"negative size for {layer.digest}")
    except (ValidationError, ValueError) as exc:
        raise RegistryError(f"the registry sent a manifest corral cannot use: {exc}") from exc
    except CorralError as exc:
        raise RegistryError(
            f"the registry sent a manifest corral cannot use: {exc.message}"
        ) from exc
    return manifest
