"""The registry service the API uses: pull and push by model name, with the right source,
scheme and credentials for each name. Built once by the app factory (``app.state.registry``)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import replace
from pathlib import Path

import httpx

from corral.errors import UnsupportedFeature
from corral.names import ModelName, parse_name
from corral.observe import NULL_OBSERVER, Observer
from corral.registry.credentials import CredentialStore
from corral.registry.download import DownloadOptions
from corral.registry.hf import pull_hf
from corral.registry.oci import OCIClient
from corral.registry.progress import Progress
from corral.registry.pull import Puller
from corral.registry.push import push_model
from corral.registry.sources import SourceKind, reference_for, source_kind
from corral.registry.split import SplitMerger, merge_split
from corral.store.blobs import BlobStore
from corral.store.models import Store

__all__ = ["RegistryService"]


def _merge_with_tool_on_path(blobs: BlobStore, parts: list[tuple[str, str]]) -> str:
    found = shutil.which("llama-gguf-split")
    return merge_split(Path(found) if found else None, blobs, parts)


class RegistryService:
    def __init__(
        self,
        store: Store,
        credentials: CredentialStore,
        *,
        noprune: bool = False,
        lock: threading.Lock | None = None,
        held: Callable[[], Collection[str]] = frozenset,
        options: DownloadOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        merge: SplitMerger | None = None,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        """``merge`` joins split GGUFs; by default with ``llama-gguf-split`` on PATH (the app
        factory passes one that finds the tool beside the engine)."""
        self.store = store
        self.merge = merge or _merge_with_tool_on_path
        self.credentials = credentials
        self.options = options or DownloadOptions()
        self.observer = observer  # pull bytes and results (metrics)
        if observer is not NULL_OBSERVER:
            self.options = replace(self.options, observer=observer)
        self.transport = transport
        self.puller = Puller(store, noprune=noprune, lock=lock, held=held, options=self.options)

    def client_factory(self, name: ModelName, *, insecure: bool) -> Callable[[], OCIClient]:
        ref = reference_for(name, insecure=insecure)

        def make() -> OCIClient:
            # Credentials are read per client: a login takes effect without a restart.
            return OCIClient(
                ref,
                self.credentials.get(name.host),
                transport=self.transport,
                read_timeout=self.options.read_timeout,
            )

        return make

    def _oci_name(self, raw: str) -> ModelName:
        name = parse_name(raw)
        if source_kind(name) is SourceKind.HUGGINGFACE:
            raise UnsupportedFeature(f"{name.display}: pushing to Hugging Face is not supported")
        return name

    async def pull(self, raw: str, *, insecure: bool = False) -> AsyncIterator[Progress]:
        try:
            async for line in self._pull(raw, insecure=insecure):
                yield line
        except Exception:
            self.observer.pull_finished(False)
            raise
        self.observer.pull_finished(True)

    async def _pull(self, raw: str, *, insecure: bool = False) -> AsyncIterator[Progress]:
        name = parse_name(raw)
        if source_kind(name) is SourceKind.HUGGINGFACE:
            async for line in pull_hf(
                self.puller, name, merge=self.merge, transport=self.transport
            ):
                yield line
            return
        async for line in self.puller.pull(name, self.client_factory(name, insecure=insecure)):
            yield line

    async def push(self, raw: str, *, insecure: bool = False) -> AsyncIterator[Progress]:
        name = self._oci_name(raw)
        client = self.client_factory(name, insecure=insecure)()
        try:
            async for line in push_model(self.store, name, client):
                yield line
        finally:
            await client.aclose()
