"""The store facade: resolve a name to a local model, list models, add and remove them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from corral.errors import ModelNotFound, StoreError
from corral.names import ModelName, parse_name
from corral.store.blobs import BlobStore
from corral.store.manifests import Manifest, ManifestStore, MediaType, StoredManifest

__all__ = ["LocalModel", "Store"]


@dataclass(slots=True)
class LocalModel:
    """A model in the store, with its small layers (template, system, params ...) read."""

    name: ModelName
    digest: str
    manifest: Manifest
    modified_at: datetime
    config: dict[str, Any]
    model_path: Path
    size: int
    template: str | None = None
    system: str | None = None
    license: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    projector_path: Path | None = None
    adapter_paths: list[Path] = field(default_factory=list)

    @property
    def model_digest(self) -> str:
        layer = self.manifest.first(MediaType.MODEL)
        return layer.digest if layer else ""


class Store:
    """Ollama-compatible model store rooted at ``CORRAL_MODELS``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = BlobStore(root / "blobs")
        self.manifests = ManifestStore(root / "manifests")

    def get(self, name: str | ModelName) -> LocalModel:
        parsed = parse_name(name) if isinstance(name, str) else name
        stored = self.manifests.get(parsed)
        if stored is None:
            raise ModelNotFound(str(name))
        return self._resolve(stored)

    def list(self) -> list[LocalModel]:
        models = []
        for stored in self.manifests:
            try:
                models.append(self._resolve(stored))
            except StoreError:
                continue  # incomplete models are not listed (a pull in progress, a broken copy)
        return models

    def _read_text(self, manifest: Manifest, media_type: str) -> str | None:
        layer = manifest.first(media_type)
        if layer is None:
            return None
        return self.blobs.path(layer.digest).read_text(encoding="utf-8")

    def _read_json(self, digest: str) -> Any:
        try:
            return json.loads(self.blobs.path(digest).read_bytes())
        except (OSError, ValueError) as exc:
            raise StoreError(f"blob {digest} is missing or not JSON: {exc}") from exc

    def _resolve(self, stored: StoredManifest) -> LocalModel:
        manifest = stored.manifest
        model_layer = manifest.first(MediaType.MODEL)
        if model_layer is None:
            raise StoreError(f"{stored.name} has no model layer")
        model_path = self.blobs.path(model_layer.digest)
        if not model_path.is_file():
            raise StoreError(f"{stored.name}: model blob {model_layer.digest} is missing")
        config = self._read_json(manifest.config.digest) if manifest.config.digest else {}
        params_layer = manifest.first(MediaType.PARAMS)
        messages_layer = manifest.first(MediaType.MESSAGES)
        projector = manifest.first(MediaType.PROJECTOR)
        try:
            return LocalModel(
                name=stored.name,
                digest=stored.digest,
                manifest=manifest,
                modified_at=datetime.fromtimestamp(stored.modified, tz=UTC),
                config=config if isinstance(config, dict) else {},
                model_path=model_path,
                size=sum(layer.size for layer in manifest.layers) + manifest.config.size,
                template=self._read_text(manifest, MediaType.TEMPLATE),
                system=self._read_text(manifest, MediaType.SYSTEM),
                license=self._read_text(manifest, MediaType.LICENSE),
                params=self._read_json(params_layer.digest) if params_layer else {},
                messages=self._read_json(messages_layer.digest) if messages_layer else [],
                projector_path=self.blobs.path(projector.digest) if projector else None,
                adapter_paths=[
                    self.blobs.path(layer.digest) for layer in manifest.layers_of(MediaType.ADAPTER)
                ],
            )
        except OSError as exc:
            raise StoreError(f"{stored.name}: {exc}") from exc
