"""The OCI distribution v2 protocol, as much of it as pulling and pushing models needs.

Manifests are fetched with the Docker v2 schema 2 and OCI Accept headers (the registry
answers 404 for a schema-2 manifest without one), blobs follow redirects to blob storage
(our Authorization is dropped on a cross-origin hop), and every request goes through the
401-challenge flow of :class:`~corral.registry.auth.RegistryAuth`.

Blob bodies are read with aiohttp, everything else with httpx: receiving a 253 MB blob over
loopback cost 0.37 s of CPU through httpx and 0.10 s through aiohttp (its C parser and
buffers), and on a 2-core machine that CPU is the download's speed. With an injected httpx
``transport`` (tests, custom networking) blobs go through it too.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import httpx

from corral.errors import ManifestUnknown, RegistryAuthError, RegistryError
from corral.registry.auth import RegistryAuth
from corral.registry.credentials import Credential
from corral.registry.download import BlobBody
from corral.registry.network import unreachable
from corral.registry.sources import Reference, is_loopback
from corral.store.manifests import MediaType

__all__ = ["MANIFEST_ACCEPT", "OCIClient"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_ACCEPT = f"{MediaType.MANIFEST}, {OCI_MANIFEST}"
OCTET = "application/octet-stream"
CHUNK = 32 << 20  # uploads bigger than this go as PATCH chunks of this size


class _AiohttpBody:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(chunk_size or 1 << 20):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RegistryError(f"blob download interrupted: {exc or type(exc).__name__}") from exc


async def _follow(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> aiohttp.ClientResponse:
    """GET with redirects followed by hand: Authorization never leaves the registry's origin."""
    origin = httpx.URL(url)
    target = origin
    for _ in range(10):
        same = (target.scheme, target.host, target.port) == (
            origin.scheme,
            origin.host,
            origin.port,
        )
        sent = headers if same else {k: v for k, v in headers.items() if k != "Authorization"}
        try:
            response = await session.get(str(target), headers=sent, allow_redirects=False)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise unreachable(f"registry {origin.host}", exc) from exc
        if response.status not in (301, 302, 303, 307, 308):
            return response
        location = response.headers.get("Location", "")
        response.release()
        target = target.join(location)
    raise RegistryError(f"registry {origin.host}: too many redirects")


def _fail(response: httpx.Response, what: str) -> RegistryError:
    detail = response.text.strip()[:300] if not response.is_stream_consumed else ""
    message = f"{what}: {response.status_code} {response.reason_phrase} {detail}".strip()
    if response.status_code in (401, 403):
        return RegistryAuthError(message)
    return RegistryError(message)


class OCIClient:
    """One registry repository. ``transport`` lets tests swap the network out."""

    def __init__(
        self,
        ref: Reference,
        credential: Credential | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        read_timeout: float = 30.0,
    ) -> None:
        self.ref = ref
        self.auth = RegistryAuth(ref.host, credential)
        self._transport = transport
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None  # for blob bodies, made on first use
        self._http = httpx.AsyncClient(
            base_url=ref.base_url,
            transport=transport,
            follow_redirects=True,
            # The read timeout is what notices a stalled part (the caller then retries it).
            timeout=httpx.Timeout(read_timeout, connect=10.0),
            trust_env=not is_loopback(ref.host),
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._session is not None:
            await self._session.close()

    def _path(self, kind: str, ref: str) -> str:
        return f"/v2/{self.ref.repository}/{kind}/{ref}"

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request with the challenge flow: at most two retries after a 401."""
        for _ in range(3):
            request = self._http.build_request(
                method, url, headers=headers, content=content, params=params
            )
            self.auth.apply(request)
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                raise unreachable(f"registry {self.ref.host}", exc) from exc
            if response.status_code != 401:
                return response
            await response.aread()
            await response.aclose()
            if not await self.auth.answer(self._http, response):
                break
        raise _fail(response, f"{method} {request.url.path}")

    async def get_manifest(self) -> tuple[bytes, str]:
        response = await self.send(
            "GET", self._path("manifests", self.ref.tag), headers={"Accept": MANIFEST_ACCEPT}
        )
        if response.status_code == 404:
            raise ManifestUnknown("pull model manifest: file does not exist")
        if response.status_code >= 400:
            raise _fail(response, "pull model manifest")
        return response.content, response.headers.get("Content-Type", MediaType.MANIFEST)

    @asynccontextmanager
    async def blob(self, digest: str, start: int, end: int) -> AsyncIterator[BlobBody]:
        """Bytes ``start..end`` (inclusive) of a blob, streamed; 206 expected."""
        headers = {"Range": f"bytes={start}-{end}"}
        what = f"pull blob {digest[:19]}"
        if self._transport is None:
            async with self._get_body(self._path("blobs", digest), headers, what) as body:
                yield body
            return
        response = await self.send("GET", self._path("blobs", digest), headers=headers, stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise _fail(response, what)
            yield response
        finally:
            await response.aclose()

    @asynccontextmanager
    async def _get_body(
        self, path: str, headers: dict[str, str], what: str
    ) -> AsyncIterator[BlobBody]:
        """A GET through aiohttp, with the same challenge flow as :meth:`send`."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=self._read_timeout),
                trust_env=not is_loopback(self.ref.host),
            )
        url = str(self._http.base_url.join(path))
        for _ in range(3):
            probe = httpx.Request("GET", url)
            self.auth.apply(probe)  # the credentials the next request carries
            sent = (
                {"Authorization": probe.headers["Authorization"]}
                if probe.headers.get("Authorization")
                else {}
            )
            response = await _follow(self._session, url, {**headers, **sent})
            if response.status == 401:
                challenge = response.headers.get("WWW-Authenticate", "")
                response.release()
                refused = httpx.Response(
                    401, headers={"WWW-Authenticate": challenge}, request=probe
                )
                if await self.auth.answer(self._http, refused):
                    continue
                raise RegistryAuthError(f"{what}: 401 Unauthorized")
            if response.status >= 400:
                detail = (await response.text(errors="replace")).strip()[:300]
                response.release()
                message = f"{what}: {response.status} {response.reason or ''} {detail}".strip()
                if response.status == 403:
                    raise RegistryAuthError(message)
                raise RegistryError(message)
            try:
                yield _AiohttpBody(response)
            finally:
                response.release()
            return
        raise RegistryAuthError(f"{what}: 401 Unauthorized (after answering the challenge)")

    async def has_blob(self, digest: str) -> bool:
        response = await self.send("HEAD", self._path("blobs", digest))
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise _fail(response, f"check blob {digest[:19]}")
        return True

    async def start_upload(self, digest: str, mount_from: str | None) -> str | None:
        """The upload URL, or None when the registry mounted the blob from ``mount_from``."""
        params = {"mount": digest, "from": mount_from} if mount_from else None
        response = await self.send(
            "POST", f"/v2/{self.ref.repository}/blobs/uploads/", params=params
        )
        if response.status_code == 201 and mount_from:
            return None
        if response.status_code != 202 or "Location" not in response.headers:
            raise _fail(response, f"start upload of {digest[:19]}")
        return response.headers["Location"]

    async def upload(
        self, location: str, path: Path, digest: str, progress: Callable[[int], None]
    ) -> None:
        """Monolithic PUT for small blobs, PATCH chunks then a closing PUT for big ones."""
        headers = {"Content-Type": OCTET}
        # Local reads of at most CHUNK bytes: fast enough not to need a thread hop.
        with open(path, "rb") as f:  # noqa: ASYNC230
            size = os.fstat(f.fileno()).st_size
            if size > CHUNK:
                offset = 0
                while chunk := f.read(CHUNK):
                    end = offset + len(chunk) - 1
                    patch_headers = {**headers, "Content-Range": f"{offset}-{end}"}
                    response = await self.send(
                        "PATCH", location, headers=patch_headers, content=chunk
                    )
                    if response.status_code != 202:
                        raise _fail(response, f"upload blob {digest[:19]}")
                    location = response.headers.get("Location", location)
                    offset += len(chunk)
                    progress(len(chunk))
                body = b""
            else:
                body = f.read()
        # The upload URL carries the registry's state in its query: add to it, never replace.
        url = str(self._http.base_url.join(location).copy_add_param("digest", digest))
        response = await self.send("PUT", url, headers=headers, content=body)
        if response.status_code != 201:
            raise _fail(response, f"upload blob {digest[:19]}")
        if body:
            progress(len(body))

    async def put_manifest(self, data: bytes, media_type: str) -> None:
        response = await self.send(
            "PUT",
            self._path("manifests", self.ref.tag),
            headers={"Content-Type": media_type},
            content=data,
        )
        if response.status_code not in (200, 201):
            raise _fail(response, "push manifest")
