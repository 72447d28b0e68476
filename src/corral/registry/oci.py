"""The OCI distribution v2 protocol, as much of it as pulling and pushing models needs.

Manifests are fetched with the Docker v2 schema 2 and OCI Accept headers (the registry
answers 404 for a schema-2 manifest without one), blobs follow redirects to blob storage
(httpx drops our Authorization on a cross-origin hop), and every request goes through the
401-challenge flow of :class:`~corral.registry.auth.RegistryAuth`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from corral.errors import ManifestUnknown, RegistryAuthError, RegistryError
from corral.registry.auth import RegistryAuth
from corral.registry.credentials import Credential
from corral.registry.sources import Reference, is_loopback
from corral.store.manifests import MediaType

__all__ = ["MANIFEST_ACCEPT", "OCIClient"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_ACCEPT = f"{MediaType.MANIFEST}, {OCI_MANIFEST}"
OCTET = "application/octet-stream"
CHUNK = 32 << 20  # uploads bigger than this go as PATCH chunks of this size


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
                raise RegistryError(f"registry {self.ref.host}: {exc!r}") from exc
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
    async def blob(self, digest: str, start: int, end: int) -> AsyncIterator[httpx.Response]:
        """Bytes ``start..end`` (inclusive) of a blob, streamed; 206 expected."""
        headers = {"Range": f"bytes={start}-{end}"}
        response = await self.send("GET", self._path("blobs", digest), headers=headers, stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise _fail(response, f"pull blob {digest[:19]}")
            yield response
        finally:
            await response.aclose()

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
