"""The registry service wired as the server and ``corral provision`` both use it."""

from __future__ import annotations

from corral.config import Settings
from corral.core.models import ModelManager
from corral.observe import NULL_OBSERVER, Observer
from corral.registry import CredentialStore, RegistryService
from corral.registry.split import merge_split
from corral.store.blobs import BlobStore
from corral.store.models import Store

__all__ = ["registry_service"]


def registry_service(
    settings: Settings, store: Store, models: ModelManager, observer: Observer = NULL_OBSERVER
) -> RegistryService:
    """Pulls share the model manager's lock (manifest writes vs pruning) and keep the blobs
    its creates hold; split GGUFs are joined with the engine build's llama-gguf-split."""

    def merge(blobs: BlobStore, parts: list[tuple[str, str]]) -> str:
        from corral.runner.discovery import find_engine_tool  # only when a split is joined

        tool = find_engine_tool("llama-gguf-split", settings.llama_server)
        return merge_split(tool, blobs, parts)

    return RegistryService(
        store,
        CredentialStore(settings.home / "credentials.json"),
        noprune=settings.noprune,
        lock=models.store_lock,
        held=models.held_digests,
        merge=merge,
        observer=observer,
    )
