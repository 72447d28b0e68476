"""Push smollm2 to a real docker-registry, delete it, pull it back: the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.names import parse_name
from corral.store.manifests import MediaType
from tests.registry.conftest import collect, seeded_store, service
from tests.registry.servers import Registry

pytestmark = pytest.mark.registry


def test_push_delete_pull_is_byte_identical(registry: Registry, tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "models")
    from corral.store.create import copy_manifest

    name = f"{registry.host}/team/smol:v1"
    copy_manifest(store, parse_name("smollm2:135m"), parse_name(name))
    before = store.manifests.get(parse_name(name))
    assert before is not None
    manifest_bytes = before.path.read_bytes()
    svc = service(store, tmp_path)

    pushed = collect(svc.push(name))
    assert pushed[0] == {"status": "retrieving manifest"}
    assert pushed[-2:] == [{"status": "pushing manifest"}, {"status": "success"}]
    model = before.manifest.first(MediaType.MODEL)
    assert model is not None
    assert {"status": f"pushing {model.digest[7:19]}", "digest": model.digest,
            "total": model.size, "completed": model.size} in pushed  # fmt: skip

    # Delete everything locally, then pull it back.
    store.manifests.delete(parse_name(name))
    store.manifests.delete(parse_name("smollm2:135m"))
    for digest in before.manifest.digests():
        store.blobs.remove(digest)

    pulled = collect(svc.pull(name))
    statuses = [line["status"] for line in pulled]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert f"pulling {model.digest[7:19]}" in statuses
    after = store.manifests.get(parse_name(name))
    assert after is not None
    assert after.path.read_bytes() == manifest_bytes
    assert after.digest == before.digest
    for digest in before.manifest.digests():
        assert store.blobs.path(digest).is_file()
        from corral.store.blobs import sha256_file

        assert sha256_file(store.blobs.path(digest)) == digest
    # The manifest is Ollama's format: docker v2 schema 2, Ollama layer media types.
    doc = json.loads(manifest_bytes)
    assert doc["mediaType"] == MediaType.MANIFEST
    assert doc["config"]["mediaType"] == MediaType.CONFIG
    assert MediaType.MODEL in [layer["mediaType"] for layer in doc["layers"]]


def test_second_push_skips_blobs_the_registry_has(published: str, tmp_path: Path) -> None:
    store = seeded_store(tmp_path / "models")
    from corral.store.create import copy_manifest

    copy_manifest(store, parse_name("smollm2:135m"), parse_name(published))
    svc = service(store, tmp_path)
    lines = collect(svc.push(published))
    blob_lines = [x for x in lines if str(x["status"]).startswith("pushing ") and "digest" in x]
    # Every blob: a 0 line, then at once a complete one (HEAD said it is there), no upload.
    assert all(x["completed"] in (0, x["total"]) for x in blob_lines)
    assert lines[-1] == {"status": "success"}
