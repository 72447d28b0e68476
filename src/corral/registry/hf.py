"""Hugging Face GGUF repositories: ``hf.co/<org>/<repo>[:<quant>]`` (or ``huggingface.co/...``).

Speaks the two endpoints ``huggingface_hub`` itself uses, directly with httpx (the library
would add a second HTTP stack and its own cache layout, and gives nothing the resumable
downloader here lacks):

- ``GET {HF_ENDPOINT}/api/models/{repo}/tree/main?recursive=true``: the files, with the
  sha256 (``lfs.oid``) and size of each LFS file;
- ``GET {HF_ENDPOINT}/{repo}/resolve/main/{file}``: the bytes (ranged; redirects to the CDN
  are followed, and the token is not sent across origins).

``HF_ENDPOINT`` (default ``https://huggingface.co``) and ``HF_TOKEN`` (sent as ``Bearer``)
are read per pull. The file is the GGUF whose name contains the tag as a whole token,
case-insensitively (``Q4_K_M`` matches ``Model-q4_k_m.gguf`` but not ``Model-Q4_K_M_L``).
With no tag (``latest``) the default is the ``Q4_K_M`` file when there is one, else the first
GGUF by name (``mmproj`` projector files are never chosen). A split GGUF
(``-00001-of-00003.gguf`` …) is pulled whole: every part, then they are joined into one model
blob (:mod:`corral.registry.split`) and the parts dropped.

The files download through the :class:`~corral.registry.pull.Puller`, as OCI layers do:
resumable, verified, shared with a concurrent pull of the same file, disk space checked
first. Then the model is stored under a normal Ollama manifest (model layer, the GGUF's chat
template as the template layer, and the config blob), written last; the blobs of a manifest
it replaces are pruned.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote

import httpx

from corral.errors import ManifestUnknown, RegistryAuthError, RegistryError
from corral.gguf import read_gguf
from corral.names import ModelName
from corral.registry.network import unreachable
from corral.registry.progress import Progress
from corral.registry.pull import Puller
from corral.registry.split import SPLIT_NAME
from corral.store.blobs import BlobStore
from corral.store.create import create_model
from corral.store.manifests import Layer, MediaType
from corral.store.models import Store

__all__ = ["DEFAULT_QUANT", "HFClient", "HFFile", "choose_files", "pull_hf"]

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_QUANT = "Q4_K_M"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class HFFile:
    path: str
    size: int
    sha256: str | None  # the LFS oid, when the listing gives it


def _token_match(tag: str, path: str) -> bool:
    stem = path.rsplit("/", 1)[-1][: -len(".gguf")]
    pattern = rf"(?<![A-Za-z0-9_]){re.escape(tag)}(?![A-Za-z0-9_])"
    return re.search(pattern, stem, re.IGNORECASE) is not None


def choose_files(files: list[HFFile], tag: str, repo: str) -> list[HFFile]:
    """The GGUF for ``tag`` (see the module docstring for the rules): one file, or every
    part of a split one, in order."""
    ggufs = sorted(
        (
            f
            for f in files
            if f.path.lower().endswith(".gguf")
            and "mmproj" not in f.path.rsplit("/", 1)[-1].lower()
        ),
        key=lambda f: f.path,
    )
    if not ggufs:
        raise ManifestUnknown(f"hf.co/{repo} has no GGUF files")
    if tag.lower() == "latest":
        matches = [f for f in ggufs if _token_match(DEFAULT_QUANT, f.path)] or ggufs[:1]
    else:
        matches = [f for f in ggufs if _token_match(tag, f.path)]
    if not matches:
        names = ", ".join(f.path for f in ggufs)
        raise ManifestUnknown(f"hf.co/{repo} has no GGUF file matching {tag!r} (it has: {names})")
    split = SPLIT_NAME.search(matches[0].path)
    if split is None:
        return matches[:1]
    stem = matches[0].path[: split.start()]
    count = int(split.group(2))
    parts = {
        int(m.group(1)): f
        for f in matches
        if (m := SPLIT_NAME.search(f.path)) and f.path[: m.start()] == stem
    }
    missing = [i for i in range(1, count + 1) if i not in parts]
    if missing or count == 0:
        raise ManifestUnknown(f"hf.co/{repo}: split GGUF {stem} lacks part(s) {missing} of {count}")
    return [parts[i] for i in range(1, count + 1)]


class HFClient:
    """One repository on one endpoint; also the downloader's blob source for one file."""

    def __init__(
        self,
        repo: str,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        read_timeout: float = 30.0,
        files: dict[str, str] | None = None,
    ) -> None:
        self.repo = repo
        self.files = files or {}  # digest -> path in the repository, for blob()
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        token = token if token is not None else os.environ.get("HF_TOKEN")
        self._origin = httpx.URL(self.endpoint)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,  # redirects by hand: the token stays on the hub's origin
            timeout=httpx.Timeout(read_timeout, connect=10.0),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self, url: str, headers: dict[str, str], *, stream: bool = False
    ) -> httpx.Response:
        target = httpx.URL(url)
        for _ in range(10):
            same = (target.scheme, target.host, target.port) == (
                self._origin.scheme,
                self._origin.host,
                self._origin.port,
            )
            request = self._http.build_request(
                "GET", target, headers={**headers, **(self._headers if same else {})}
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                raise unreachable(f"Hugging Face at {self.endpoint}", exc) from exc
            if not response.is_redirect:
                return response
            await response.aclose()
            target = target.join(response.headers["Location"])
        raise RegistryError(f"Hugging Face {self.endpoint}: too many redirects")

    @staticmethod
    def _fail(response: httpx.Response, what: str) -> RegistryError:
        message = f"{what}: {response.status_code} {response.reason_phrase}"
        if response.status_code in (401, 403):
            return RegistryAuthError(f"{message} (set HF_TOKEN for gated or private repos)")
        if response.status_code == 404:
            return ManifestUnknown(f"{message}: no such repository or file")
        return RegistryError(message)

    async def list_files(self) -> list[HFFile]:
        url = f"{self.endpoint}/api/models/{self.repo}/tree/main?recursive=true"
        response = await self._send(url, {"Accept": "application/json"})
        if response.status_code >= 400:
            raise self._fail(response, f"list hf.co/{self.repo}")
        try:
            entries = response.json()
            files = []
            for entry in entries:
                if entry.get("type") != "file":
                    continue
                lfs = entry.get("lfs") or {}
                oid = lfs.get("oid")
                files.append(
                    HFFile(
                        path=str(entry["path"]),
                        size=int(lfs.get("size", entry.get("size", 0))),
                        sha256=oid if isinstance(oid, str) and _SHA256.match(oid) else None,
                    )
                )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise RegistryError(f"list hf.co/{self.repo}: unusable answer: {exc}") from exc
        return files

    def resolve_url(self, path: str) -> str:
        return f"{self.endpoint}/{self.repo}/resolve/main/{quote(path)}"

    @asynccontextmanager
    async def blob(self, digest: str, start: int, end: int) -> AsyncIterator[httpx.Response]:
        path = self.files[digest]
        headers = {"Range": f"bytes={start}-{end}"}
        response = await self._send(self.resolve_url(path), headers, stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise self._fail(response, f"download {path}")
            yield response
        finally:
            await response.aclose()


async def pull_hf(
    puller: Puller,
    name: ModelName,
    *,
    merge: Callable[[BlobStore, list[tuple[str, str]]], str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Progress]:
    """Ollama's pull status sequence, for a Hugging Face GGUF (``merge`` joins a split one)."""
    yield Progress(status="pulling manifest")
    repo = f"{name.namespace}/{name.model}"
    timeout = puller.options.read_timeout
    lister = HFClient(repo, transport=transport, read_timeout=timeout)
    try:
        chosen = choose_files(await lister.list_files(), name.tag, repo)
    finally:
        await lister.aclose()
    unverifiable = [f.path for f in chosen if f.sha256 is None]
    if unverifiable:
        raise RegistryError(
            f"hf.co/{repo}: the listing gives no sha256 for {unverifiable[0]}, so it cannot be "
            "verified; corral only pulls LFS-stored GGUFs"
        )
    layers = [
        Layer(media_type=MediaType.MODEL, digest=f"sha256:{f.sha256}", size=f.size) for f in chosen
    ]
    by_digest = {layer.digest: f.path for layer, f in zip(layers, chosen, strict=True)}

    def client() -> HFClient:
        return HFClient(repo, transport=transport, read_timeout=timeout, files=by_digest)

    store = puller.store
    async with puller.holding(layers):
        async for line in puller.download(layers, client):
            yield line
        yield Progress(status="verifying sha256 digest")
        digest = layers[0].digest
        if len(layers) > 1:
            yield Progress(status=f"joining {len(layers)} split GGUF files")
            parts = [(path, d) for d, path in by_digest.items()]
            digest = await asyncio.to_thread(merge, store.blobs, parts)
        yield Progress(status="writing manifest")
        with puller.pinned(digest):
            write = partial(_write, store, name, digest)
            await asyncio.to_thread(puller.commit, name, {digest}, write)
    if len(layers) > 1:
        await asyncio.to_thread(puller.drop, set(by_digest))  # the parts, now joined
    yield Progress(status="success")


def _write(store: Store, name: ModelName, digest: str) -> None:
    """The manifest: model layer, the GGUF's chat template, config blob."""
    template = read_gguf(store.blobs.path(digest)).chat_template
    text = {MediaType.TEMPLATE: template} if template else None
    create_model(store, name, digest, text_layers=text)
