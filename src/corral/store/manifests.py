"""Manifests: Docker v2 schema 2 JSON with Ollama's layer media types, at
``manifests/<host>/<namespace>/<model>/<tag>``. Lookups are case-insensitive, like Ollama's.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corral.errors import StoreError
from corral.names import ModelName, parse_name
from corral.store.atomic import fsync_dir, write_atomic

__all__ = ["Layer", "Manifest", "ManifestStore", "MediaType", "StoredManifest"]

log = logging.getLogger(__name__)


class MediaType:
    MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    CONFIG = "application/vnd.docker.container.image.v1+json"
    MODEL = "application/vnd.ollama.image.model"
    PROJECTOR = "application/vnd.ollama.image.projector"
    ADAPTER = "application/vnd.ollama.image.adapter"
    TEMPLATE = "application/vnd.ollama.image.template"
    SYSTEM = "application/vnd.ollama.image.system"
    PARAMS = "application/vnd.ollama.image.params"
    MESSAGES = "application/vnd.ollama.image.messages"
    LICENSE = "application/vnd.ollama.image.license"


class Layer(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    media_type: str = Field(alias="mediaType")
    digest: str
    size: int
    from_: str | None = Field(None, alias="from")


class Manifest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    schema_version: int = Field(2, alias="schemaVersion")
    media_type: str = Field(MediaType.MANIFEST, alias="mediaType")
    config: Layer
    layers: list[Layer]

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(by_alias=True, exclude_none=True)).encode()

    def layers_of(self, media_type: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.media_type == media_type]

    def first(self, media_type: str) -> Layer | None:
        found = self.layers_of(media_type)
        return found[0] if found else None

    def digests(self) -> set[str]:
        return {self.config.digest, *(layer.digest for layer in self.layers)}


@dataclass(frozen=True, slots=True)
class StoredManifest:
    name: ModelName
    path: Path
    manifest: Manifest
    digest: str  # sha256 hex of the manifest file, as Ollama reports it
    modified: float  # mtime


class ManifestStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: ModelName) -> Path:
        return self.root.joinpath(*name.manifest_parts())

    def _find(self, name: ModelName) -> Path | None:
        exact = self._path(name)
        if exact.is_file():
            return exact
        # Case-insensitive match, part by part, as on Ollama's case-folding filesystems.
        current = self.root
        for part in name.manifest_parts():
            if not current.is_dir():
                return None
            match = next((p for p in current.iterdir() if p.name.lower() == part.lower()), None)
            if match is None:
                return None
            current = match
        return current if current.is_file() else None

    def get(self, name: ModelName) -> StoredManifest | None:
        path = self._find(name)
        if path is None:
            return None
        return self._load(path)

    def _load(self, path: Path) -> StoredManifest:
        raw = path.read_bytes()
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError as exc:
            raise StoreError(f"manifest {path} is not valid: {exc.errors()[0]['msg']}") from exc
        rel = path.relative_to(self.root).parts
        name = ModelName(host=rel[0], namespace=rel[1], model=rel[2], tag=rel[3])
        return StoredManifest(
            name=name,
            path=path,
            manifest=manifest,
            digest=hashlib.sha256(raw).hexdigest(),
            modified=path.stat().st_mtime,
        )

    def put(self, name: ModelName, manifest: Manifest) -> StoredManifest:
        """Write the manifest last, atomically: the model appears whole or not at all."""
        existing = self._find(name)
        path = existing or self._path(name)
        write_atomic(path, manifest.to_bytes())
        return self._load(path)

    def delete(self, name: ModelName) -> bool:
        path = self._find(name)
        if path is None:
            return False
        path.unlink()
        fsync_dir(path.parent)
        # Remove now-empty directories up to (not including) the root.
        parent = path.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
        return True

    def __iter__(self) -> Iterator[StoredManifest]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*/*/*/*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            try:
                parse_name("/".join(path.relative_to(self.root).parts[:3]) + ":" + path.name)
                yield self._load(path)
            except Exception as exc:  # a foreign or broken file must not hide the others
                log.warning("skipping manifest %s: %s", path, exc)
