"""Pruning removes only blobs that nothing references or holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import StoreError
from corral.names import parse_name
from corral.store.create import create_model
from corral.store.manifests import MediaType
from corral.store.models import Store
from corral.store.prune import referenced_digests, remove_unreferenced


@pytest.fixture
def store(tmp_path: Path, smollm2_path: Path) -> Store:
    store = Store(tmp_path / "models")
    model = store.blobs.import_file(smollm2_path)
    create_model(store, parse_name("a"), model, text_layers={MediaType.SYSTEM: "only in a"})
    create_model(store, parse_name("b"), model, text_layers={MediaType.SYSTEM: "only in b"})
    return store


def _digest(store: Store, name: str, media_type: str) -> str:
    layer = store.get(name).manifest.first(media_type)
    assert layer is not None
    return layer.digest


def test_referenced_digests_cover_every_manifest(store: Store) -> None:
    refs = referenced_digests(store)
    for name in ("a", "b"):
        assert store.get(name).manifest.digests() <= refs


def test_only_unreferenced_candidates_are_removed(store: Store) -> None:
    a = store.get("a")
    only_a = _digest(store, "a", MediaType.SYSTEM)
    shared = _digest(store, "a", MediaType.MODEL)
    uploaded = store.blobs.write_bytes(b"an upload nobody uses yet")
    assert store.manifests.delete(a.name)
    removed = remove_unreferenced(store, a.manifest.digests())
    assert only_a in removed and a.manifest.config.digest in removed
    assert shared not in removed and store.blobs.exists(shared)  # b still uses the GGUF
    assert store.blobs.exists(uploaded)  # not a candidate: never touched
    assert store.get("b").system == "only in b"


def test_kept_digests_survive(store: Store) -> None:
    a = store.get("a")
    only_a = _digest(store, "a", MediaType.SYSTEM)
    store.manifests.delete(a.name)
    assert only_a not in remove_unreferenced(store, [only_a], keep={only_a})
    assert store.blobs.exists(only_a)


def test_a_foreign_or_broken_manifest_still_protects_its_blobs(store: Store) -> None:
    only_a = _digest(store, "a", MediaType.SYSTEM)
    store.manifests.delete(parse_name("a"))
    junk = store.manifests.root / "registry.ollama.ai/library/other/latest"
    junk.parent.mkdir(parents=True)
    junk.write_text(f"not json, but it mentions {only_a.replace(':', '-')}")
    assert remove_unreferenced(store, [only_a]) == []
    assert store.blobs.exists(only_a)


def test_unreadable_manifests_prune_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    only_a = _digest(store, "a", MediaType.SYSTEM)

    def fail(self: Path) -> bytes:
        raise PermissionError("denied")

    monkeypatch.setattr(Path, "read_bytes", fail)
    with pytest.raises(StoreError, match="cannot read the manifests"):
        remove_unreferenced(store, [only_a])
    monkeypatch.undo()
    assert store.blobs.exists(only_a)
