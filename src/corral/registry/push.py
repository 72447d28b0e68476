"""Push a local model to an OCI registry: blobs (skipped when present, mounted from another
repository of ours on the same registry when possible, else uploaded), then the manifest
file's exact bytes, so a pull gives back the same manifest digest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from corral.errors import ModelNotFound
from corral.names import ModelName
from corral.registry.oci import OCIClient
from corral.registry.progress import Progress
from corral.store.manifests import Layer
from corral.store.models import Store

__all__ = ["mount_source", "push_model"]

_TICK = 0.2


def mount_source(store: Store, name: ModelName, digest: str) -> str | None:
    """Another repository on the same registry whose local manifest holds ``digest``."""
    for stored in store.manifests:
        other = stored.name
        if other.host.lower() != name.host.lower():
            continue
        if (other.namespace, other.model) == (name.namespace, name.model):
            continue
        if digest in stored.manifest.digests():
            return f"{other.namespace}/{other.model}"
    return None


async def push_model(store: Store, name: ModelName, client: OCIClient) -> AsyncIterator[Progress]:
    stored = store.manifests.get(name)
    if stored is None:
        raise ModelNotFound(name.display)
    yield Progress(status="retrieving manifest")
    manifest = stored.manifest
    raw = stored.path.read_bytes()
    for layer in [*manifest.layers, manifest.config]:
        async for line in _push_blob(store, name, client, layer):
            yield line
    yield Progress(status="pushing manifest")
    await client.put_manifest(raw, manifest.media_type)
    yield Progress(status="success")


async def _push_blob(
    store: Store, name: ModelName, client: OCIClient, layer: Layer
) -> AsyncIterator[Progress]:
    status = f"pushing {layer.digest[7:19]}"

    def line(completed: int) -> Progress:
        return Progress(status=status, digest=layer.digest, total=layer.size, completed=completed)

    yield line(0)
    if await client.has_blob(layer.digest):
        yield line(layer.size)
        return
    location = await client.start_upload(layer.digest, mount_source(store, name, layer.digest))
    if location is None:  # mounted: no bytes sent
        yield line(layer.size)
        return
    sent = 0

    def progress(n: int) -> None:
        nonlocal sent
        sent += n

    path = store.blobs.path(layer.digest)
    task = asyncio.create_task(client.upload(location, path, layer.digest, progress))
    try:
        shown = 0
        while not task.done():
            await asyncio.wait({task}, timeout=_TICK)
            if sent != shown:
                shown = sent
                yield line(sent)
        task.result()
        if shown != layer.size:
            yield line(layer.size)
    finally:
        if not task.done():
            task.cancel()
