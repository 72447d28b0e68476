"""Assemble a model from blobs: the layers, config blob and manifest Ollama would write for it.

Small layers are written the way Ollama writes them (parameters as sorted compact JSON with a
trailing newline, messages and texts verbatim), so the same Modelfile gives the same digests
in both. Each layer reports whether its blob was new (``creating new layer``) or already
there (``using existing layer``), which is what ``/api/create`` streams.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.errors import BadRequest, GGUFError, ModelNotFound, UnsupportedFeature
from corral.gguf import GGUFInfo, read_gguf
from corral.names import ModelName, parse_name
from corral.store.atomic import write_atomic
from corral.store.blobs import parse_digest
from corral.store.manifests import Layer, Manifest, MediaType, StoredManifest
from corral.store.models import Store

__all__ = [
    "LayerSet",
    "build_config",
    "copy_manifest",
    "create_model",
    "file_layers",
    "import_gguf",
    "json_bytes",
    "model_layers",
    "request_gguf",
    "write_manifest",
]


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


def json_bytes(value: Any) -> bytes:
    """Go's ``json.NewEncoder(...).Encode``: compact, map keys sorted, newline-terminated."""
    return (
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n"
    )


@dataclass
class LayerSet:
    """An ordered list of layers being assembled, with the status line of each."""

    store: Store
    layers: list[Layer] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # digest -> status

    def keep(self, layer: Layer) -> None:
        """A layer that already exists (from the base model or an uploaded blob)."""
        self.layers.append(layer)
        self.statuses.setdefault(layer.digest, f"using existing layer {layer.digest}")

    def add(self, media_type: str, data: bytes, *, replace: bool = True) -> Layer:
        """Write ``data`` as a layer; ``replace`` drops existing layers of the same type."""
        if replace:
            self.layers = [layer for layer in self.layers if layer.media_type != media_type]
        digest = _digest_of(data)
        existed = self.store.blobs.exists(digest)
        if not existed:
            self.store.blobs.write_bytes(data)
        layer = Layer(media_type=media_type, digest=digest, size=len(data))
        if not any(x.digest == digest and x.media_type == media_type for x in self.layers):
            self.layers.append(layer)
        verb = "using existing" if existed else "creating new"
        self.statuses.setdefault(digest, f"{verb} layer {digest}")
        return layer

    def replace_model(self, layer: Layer, status: str) -> None:
        self.layers = [layer if x.media_type == MediaType.MODEL else x for x in self.layers]
        self.statuses[layer.digest] = status

    def status_lines(self) -> list[str]:
        seen: dict[str, None] = {}
        for layer in self.layers:
            seen.setdefault(self.statuses[layer.digest])
        return list(seen)

    @property
    def digests(self) -> set[str]:
        return {layer.digest for layer in self.layers}


def _digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def write_manifest(store: Store, name: ModelName, layers: Sequence[Layer]) -> StoredManifest:
    """Write the config blob (read from the model layer's GGUF header), then the manifest."""
    model = next((layer for layer in layers if layer.media_type == MediaType.MODEL), None)
    if model is None:
        raise ValueError("a model needs a model layer")
    info = read_gguf(store.blobs.path(model.digest))
    config = json.dumps(build_config(info, [layer.digest for layer in layers])).encode()
    config_layer = Layer(
        media_type=MediaType.CONFIG, digest=store.blobs.write_bytes(config), size=len(config)
    )
    return store.manifests.put(name, Manifest(config=config_layer, layers=list(layers)))


def create_model(
    store: Store,
    name: ModelName,
    model_digest: str,
    *,
    text_layers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> StoredManifest:
    """Write the small layers and the config, then the manifest last."""
    layers = LayerSet(store)
    size = store.blobs.size(model_digest)
    layers.keep(Layer(media_type=MediaType.MODEL, digest=model_digest, size=size))
    for media_type, text in (text_layers or {}).items():
        layers.add(media_type, text.encode())
    if params:
        layers.add(MediaType.PARAMS, json_bytes(params))
    return write_manifest(store, name, layers.layers)


def import_gguf(store: Store, name: ModelName, path: Path, **kwargs: Any) -> StoredManifest:
    """Add a GGUF file (hard-linked when possible) as a model called ``name``."""
    read_gguf(path)  # refuse a file that is not GGUF before it enters the store
    return create_model(store, name, store.blobs.import_file(path), **kwargs)


def copy_manifest(store: Store, source: ModelName, destination: ModelName) -> StoredManifest:
    """Copy the manifest file byte for byte (so both names show the same digest, as in
    Ollama); an existing destination, matched case-insensitively, is replaced."""
    stored = store.manifests.get(source)
    if stored is None:
        raise ModelNotFound(source.display)
    existing = store.manifests.get(destination)
    target = (
        existing.path if existing else store.manifests.root.joinpath(*destination.manifest_parts())
    )
    if target != stored.path:
        write_atomic(target, stored.path.read_bytes())
    found = store.manifests.get(destination)
    assert found is not None
    return found


def request_gguf(path: Path) -> GGUFInfo:
    """The header of a GGUF a request supplied; anything else is Ollama's 400."""
    try:
        return read_gguf(path)
    except GGUFError:
        raise BadRequest("supplied file was not in GGUF format") from None


def model_layers(store: Store, source: str) -> list[Layer]:
    """The layers of an existing model (to build on), each checked to be present."""
    stored = store.manifests.get(parse_name(source))
    if stored is None:
        raise ModelNotFound(source)
    for layer in stored.manifest.layers:
        if not store.blobs.exists(layer.digest):
            raise ModelNotFound(f"{source} (its layer {layer.digest} is missing)")
    return [
        Layer(media_type=x.media_type, digest=x.digest, size=x.size) for x in stored.manifest.layers
    ]


def _relative(name: str) -> bool:
    """Go's ``fs.ValidPath`` plus Ollama's ban on ``\\`` and ``:``: no way out of a folder."""
    if name in ("", ".") or "\\" in name or ":" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def file_layers(store: Store, files: dict[str, str], *, adapters: bool = False) -> list[Layer]:
    """Layers for uploaded blobs (``{filename: digest}``): a model, a projector (vision) or,
    with ``adapters``, a LoRA adapter, told apart by the GGUF header."""
    if adapters and len(files) > 1:
        raise BadRequest("only one adapter is currently supported")
    layers = []
    for filename, raw in files.items():
        if not _relative(filename):
            raise BadRequest(f"file path must be relative: {filename}")
        if filename.endswith((".safetensors", ".bin", ".pth")):
            raise UnsupportedFeature(
                f"{filename}: only GGUF files can be imported; convert it with llama.cpp's "
                "convert_hf_to_gguf.py first"
            )
        digest = parse_digest(raw)
        if not store.blobs.exists(digest):
            raise BadRequest(f"blob {digest} not found; upload it with POST /api/blobs/{digest}")
        info = request_gguf(store.blobs.path(digest))
        kind = str(info.metadata.get("general.type", "model"))
        media = MediaType.MODEL
        if adapters or kind == "adapter":
            media = MediaType.ADAPTER
        elif kind in ("projector", "mmproj") or info.architecture == "clip":
            media = MediaType.PROJECTOR
        layers.append(Layer(media_type=media, digest=digest, size=store.blobs.size(digest)))
    return layers
