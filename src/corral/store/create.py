"""Assemble a model from blobs: the config blob and manifest Ollama would write for it."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from corral.gguf import GGUFInfo, read_gguf
from corral.names import ModelName
from corral.store.manifests import Layer, Manifest, MediaType, StoredManifest
from corral.store.models import Store

__all__ = ["build_config", "create_model", "import_gguf"]


def build_config(info: GGUFInfo, layer_digests: list[str]) -> dict[str, Any]:
    """Ollama's config blob: what /api/tags' ``details`` is read from."""
    arch = info.architecture or "unknown"
    return {
        "model_format": "gguf",
        "model_family": arch,
        "model_families": [arch],
        "model_type": info.parameter_size,
        "file_type": info.quantization,
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(
            platform.machine(), platform.machine()
        ),
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layer_digests},
    }


def create_model(
    store: Store,
    name: ModelName,
    model_digest: str,
    *,
    text_layers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> StoredManifest:
    """Write the small layers and the config, then the manifest last."""
    info = read_gguf(store.blobs.path(model_digest))
    layers = [
        Layer(media_type=MediaType.MODEL, digest=model_digest, size=store.blobs.size(model_digest))
    ]
    for media_type, text in (text_layers or {}).items():
        digest = store.blobs.write_bytes(text.encode())
        layers.append(Layer(media_type=media_type, digest=digest, size=len(text.encode())))
    if params:
        data = json.dumps(params).encode()
        layers.append(
            Layer(media_type=MediaType.PARAMS, digest=store.blobs.write_bytes(data), size=len(data))
        )
    config = json.dumps(build_config(info, [layer.digest for layer in layers])).encode()
    config_layer = Layer(
        media_type=MediaType.CONFIG, digest=store.blobs.write_bytes(config), size=len(config)
    )
    return store.manifests.put(name, Manifest(config=config_layer, layers=layers))


def import_gguf(store: Store, name: ModelName, path: Path, **kwargs: Any) -> StoredManifest:
    """Add a GGUF file (hard-linked when possible) as a model called ``name``."""
    read_gguf(path)  # refuse a file that is not GGUF before it enters the store
    return create_model(store, name, store.blobs.import_file(path), **kwargs)
