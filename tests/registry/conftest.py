"""The registry tier: a real docker-registry per session, and a store holding smollm2."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.names import parse_name
from corral.registry import CredentialStore, DownloadOptions, RegistryService
from corral.registry.split import merge_split
from corral.runner.discovery import find_engine_tool
from corral.store.blobs import BlobStore
from corral.store.create import copy_manifest
from corral.store.defaults import ensure_default_model
from corral.store.models import Store
from tests.registry.servers import Registry, start_registry

SMALL_PARTS = DownloadOptions(part_size=8 << 20, parallel=4, retries=2, backoff=0.05)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


def seeded_store(root: Path) -> Store:
    store = Store(root)
    assert ensure_default_model(store)
    return store


def _merge_with_engine_tool(blobs: BlobStore, parts: list[tuple[str, str]]) -> str:
    """As the app factory does: llama-gguf-split from the engine's build."""
    return merge_split(find_engine_tool("llama-gguf-split", None), blobs, parts)


def service(store: Store, home: Path, **kw: object) -> RegistryService:
    options = kw.pop("options", SMALL_PARTS)
    kw.setdefault("merge", _merge_with_engine_tool)
    return RegistryService(store, CredentialStore(home / "credentials.json"), options=options, **kw)  # type: ignore[arg-type]


def collect(stream: object) -> list[dict[str, object]]:
    async def run() -> list[dict[str, object]]:
        return [line.model_dump(exclude_none=True) async for line in stream]  # type: ignore[attr-defined]

    return asyncio.run(run())


@pytest.fixture(scope="session")
def published(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """smollm2:135m pushed once to the session registry; returns its name there."""
    root = tmp_path_factory.mktemp("publisher")
    store = seeded_store(root / "models")
    name = f"{registry.host}/library/smollm2:135m"
    copy_manifest(store, parse_name("smollm2:135m"), parse_name(name))
    lines = collect(service(store, root).push(name))
    assert lines[-1] == {"status": "success"}
    return name
