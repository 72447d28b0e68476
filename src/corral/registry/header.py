"""A model's GGUF header straight from its registry, before any download: the manifest,
then ranged GETs of the model blob's first bytes, growing until the header parses.

The header holds the whole tokenizer (Gemma-3's 262k tokens make ~6 MiB), so the first
request asks for 1 MiB and each retry for four times more, up to :data:`MAX_HEADER`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from corral.errors import GGUFError, RegistryError
from corral.gguf import GGUFInfo, read_gguf_bytes
from corral.registry.oci import OCIClient
from corral.store.manifests import Layer, Manifest, MediaType

__all__ = ["FIRST_RANGE", "MAX_HEADER", "RemoteModel", "read_remote_header"]

FIRST_RANGE = 1 << 20
MAX_HEADER = 64 << 20


@dataclass(frozen=True, slots=True)
class RemoteModel:
    manifest: Manifest
    layer: Layer  # the model blob
    info: GGUFInfo
    fetched: int  # bytes read to parse the header


async def _prefix(client: OCIClient, layer: Layer, size: int) -> bytes:
    async with client.blob(layer.digest, 0, size - 1) as response:
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= size:
                break
        if response.status_code == 200 and len(data) > size:  # no range support: trim
            del data[size:]
    return bytes(data)


async def read_remote_header(
    client: OCIClient, *, first: int = FIRST_RANGE, limit: int = MAX_HEADER
) -> RemoteModel:
    """The manifest and the GGUF header of the model ``client``'s reference names."""
    raw, _ = await client.get_manifest()
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise RegistryError(f"the registry sent a manifest corral cannot use: {exc}") from exc
    layer = manifest.first(MediaType.MODEL)
    if layer is None:
        raise RegistryError(f"{client.ref.name.display} has no model layer in its manifest")
    size = min(first, layer.size)
    while True:
        data = await _prefix(client, layer, size)
        try:
            info = read_gguf_bytes(data, name=f"{client.ref.name.display} ({layer.digest[:19]})")
        except GGUFError:
            if len(data) >= layer.size or size >= limit:
                raise
            size = min(size * 4, layer.size, limit)
            continue
        return RemoteModel(manifest=manifest, layer=layer, info=info, fetched=len(data))
