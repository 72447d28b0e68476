import json
import os
from pathlib import Path

import pytest

from corral.errors import BadRequest, CorruptBlob, ModelNotFound
from corral.names import parse_name
from corral.store.blobs import BlobStore, parse_digest, sha256_file
from corral.store.create import import_gguf
from corral.store.defaults import DEFAULT_MODEL, ensure_default_model
from corral.store.manifests import MediaType
from corral.store.models import Store


def test_blob_written_only_when_digest_matches(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    digest = blobs.write_bytes(b"hello")
    assert digest == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert blobs.path(digest).read_bytes() == b"hello"
    assert blobs.path(digest).name == "sha256-" + digest[7:]

    wrong = "sha256:" + "0" * 64
    with pytest.raises(CorruptBlob, match="digest mismatch"):
        blobs.write_chunks([b"other"], expected=wrong)
    assert not blobs.exists(wrong)
    assert sorted(p.name for p in blobs.root.iterdir()) == ["sha256-" + digest[7:]]  # no temp left


def test_interrupted_write_leaves_nothing_visible(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")

    def chunks():  # type: ignore[no-untyped-def]
        yield b"partial data"
        raise ConnectionError("network went away")

    with pytest.raises(ConnectionError):
        blobs.write_chunks(chunks())
    assert list(blobs.root.iterdir()) == []


@pytest.mark.parametrize("bad", ["", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "G" * 64, "../x"])
def test_bad_digests_are_400(bad: str) -> None:
    with pytest.raises(BadRequest, match="invalid digest"):
        parse_digest(bad)


def test_import_hard_links_and_lists(tmp_path: Path, smollm2_path: Path) -> None:
    store = Store(tmp_path / "models")
    stored = import_gguf(store, parse_name("smol:test"), smollm2_path)
    model_layer = stored.manifest.first(MediaType.MODEL)
    assert model_layer is not None
    blob = store.blobs.path(model_layer.digest)
    if blob.stat().st_dev == smollm2_path.stat().st_dev:
        assert os.path.samefile(blob, smollm2_path)  # hard link: no 98 MB copy
    assert sha256_file(blob) == model_layer.digest

    manifest_path = tmp_path / "models/manifests/registry.ollama.ai/library/smol/test"
    on_disk = json.loads(manifest_path.read_text())
    assert on_disk["schemaVersion"] == 2
    assert on_disk["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert on_disk["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert on_disk["layers"][0]["mediaType"] == "application/vnd.ollama.image.model"

    [model] = store.list()
    assert model.name.display == "smol:test"
    assert model.config["model_family"] == "llama"
    assert model.config["file_type"] == "Q4_1"
    assert model.size == smollm2_path.stat().st_size + on_disk["config"]["size"]


def test_lookup_is_case_insensitive(tmp_path: Path, smollm2_path: Path) -> None:
    store = Store(tmp_path / "models")
    import_gguf(store, parse_name("Smol:Test"), smollm2_path)
    assert store.get("smol:test").name.model == "Smol"
    with pytest.raises(ModelNotFound, match='model "nope" not found, try pulling it first'):
        store.get("nope")


def test_default_model_added_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    assert ensure_default_model(store) is True
    assert ensure_default_model(store) is False
    model = store.get(DEFAULT_MODEL)
    assert model.config["model_type"] == "134.52M"
    assert model.template is None  # the GGUF carries its own chat template


def test_reads_an_ollama_layout_with_text_layers(tmp_path: Path, smollm2_path: Path) -> None:
    """A model written the way Ollama writes one: template, system and params layers."""
    store = Store(tmp_path / "models")
    from corral.store.create import create_model

    digest = store.blobs.import_file(smollm2_path)
    create_model(
        store,
        parse_name("example.com/team/smol:v1"),
        digest,
        text_layers={MediaType.TEMPLATE: "{{ .Prompt }}", MediaType.SYSTEM: "Be brief."},
        params={"temperature": 0.2, "stop": ["<|im_end|>"]},
    )
    model = Store(tmp_path / "models").get("example.com/team/smol:v1")
    assert model.template == "{{ .Prompt }}"
    assert model.system == "Be brief."
    assert model.params == {"temperature": 0.2, "stop": ["<|im_end|>"]}


def test_model_with_missing_blob_is_not_listed(tmp_path: Path, smollm2_path: Path) -> None:
    store = Store(tmp_path / "models")
    stored = import_gguf(store, parse_name("smol:gone"), smollm2_path)
    layer = stored.manifest.first(MediaType.MODEL)
    assert layer is not None
    store.blobs.remove(layer.digest)
    assert store.list() == []


def test_foreign_files_in_manifests_do_not_hide_models(tmp_path: Path, smollm2_path: Path) -> None:
    store = Store(tmp_path / "models")
    import_gguf(store, parse_name("smol:ok"), smollm2_path)
    junk = tmp_path / "models/manifests/registry.ollama.ai/library/broken/latest"
    junk.parent.mkdir(parents=True)
    junk.write_text("{not json")
    assert [m.name.display for m in store.list()] == ["smol:ok"]


def test_delete_manifest_prunes_empty_dirs(tmp_path: Path, smollm2_path: Path) -> None:
    store = Store(tmp_path / "models")
    import_gguf(store, parse_name("a.example/ns/m:t"), smollm2_path)
    assert store.manifests.delete(parse_name("a.example/ns/m:t"))
    assert list((tmp_path / "models/manifests").iterdir()) == []
