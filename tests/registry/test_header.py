"""Reading a GGUF header from a registry with ranged GETs (a mock registry: no network)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest

from corral.errors import GGUFError, RegistryError
from corral.gguf import read_gguf, read_gguf_bytes
from corral.names import parse_name
from corral.registry.header import read_remote_header
from corral.registry.oci import OCIClient
from corral.registry.sources import reference_for
from corral.store.manifests import MediaType


def registry(blob: bytes, ranges: list[str], honour_range: bool = True) -> httpx.MockTransport:
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MediaType.MANIFEST,
        "config": {"mediaType": MediaType.CONFIG, "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [{"mediaType": MediaType.MODEL, "digest": digest, "size": len(blob)}],
    }

    def handle(request: httpx.Request) -> httpx.Response:
        if "/manifests/" in request.url.path:
            return httpx.Response(200, json=manifest)
        assert request.url.path.endswith(digest)
        ranges.append(request.headers["Range"])
        if not honour_range:
            return httpx.Response(200, content=blob)
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers["Range"])
        assert match
        start, end = int(match[1]), int(match[2])
        return httpx.Response(206, content=blob[start : end + 1])

    return httpx.MockTransport(handle)


def read(transport: httpx.MockTransport, **kw: int) -> object:
    async def go() -> object:
        client = OCIClient(
            reference_for(parse_name("127.0.0.1:1/library/m:1")), transport=transport
        )
        try:
            return await read_remote_header(client, **kw)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_ranges_grow_until_the_header_parses(smollm2_path: Path) -> None:
    blob = smollm2_path.read_bytes()
    ranges: list[str] = []
    found = read(registry(blob, ranges), first=64 * 1024)
    assert found.info.metadata == read_gguf(smollm2_path).metadata  # type: ignore[attr-defined]
    # 64 KiB, then 256 KiB, then 1 MiB ... each four times the last, never the whole blob
    assert ranges[:2] == ["bytes=0-65535", "bytes=0-262143"]
    assert len(ranges) >= 3 and found.fetched < len(blob)  # type: ignore[attr-defined]


def test_a_registry_without_range_support_is_read_in_part(smollm2_path: Path) -> None:
    ranges: list[str] = []
    found = read(registry(smollm2_path.read_bytes(), ranges, honour_range=False))
    assert found.info.architecture == "llama"  # type: ignore[attr-defined]
    # the whole blob comes back each time, but only the asked-for prefix is read
    assert ranges == ["bytes=0-1048575", "bytes=0-4194303"]
    assert found.fetched == 4 << 20  # type: ignore[attr-defined]


def test_not_a_gguf_blob_fails_once_the_whole_blob_is_read() -> None:
    ranges: list[str] = []
    with pytest.raises(GGUFError):
        read(registry(b"not a gguf file at all" * 10, ranges), first=16)
    assert ranges[-1] == "bytes=0-219"  # grown to the whole (small) blob, then given up


def test_a_manifest_without_a_model_layer() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        body = {"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:" + "0" * 64,
                                               "size": 1}, "layers": []}  # fmt: skip
        return httpx.Response(200, content=json.dumps(body))

    with pytest.raises(RegistryError, match="no model layer"):
        read(httpx.MockTransport(handle))


def test_bytes_parser_reports_a_truncated_header(smollm2_path: Path) -> None:
    data = smollm2_path.read_bytes()[:4096]
    with pytest.raises(GGUFError, match="truncated"):
        read_gguf_bytes(data)
